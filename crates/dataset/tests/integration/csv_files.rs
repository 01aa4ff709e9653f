use funnel_dataset::{
    CsvWriter, Error, OpportunityRecord, SimulationConfig, create_csv_dir, open_csv_dir, read_csv, simulate,
};

fn sample_records(count: u64) -> Vec<OpportunityRecord> {
    let config = SimulationConfig { opportunities: count, seed: 7, ..SimulationConfig::default() };
    simulate(&config).expect("config is valid").collect()
}

fn attribute_names() -> Vec<String> {
    ["company_size", "industry", "product", "region"].map(str::to_owned).to_vec()
}

/// Writes to memory; returns (opportunities, history, activities) as text.
fn write_in_memory(records: &[OpportunityRecord]) -> (String, String, String) {
    let mut writer = CsvWriter::new(Vec::new(), Vec::new(), Vec::new(), attribute_names()).expect("headers write");
    writer.write_all(records).expect("records write");
    let (opportunities, history, activities) = writer.finish().expect("flush succeeds");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("csv output is utf-8");
    (text(opportunities), text(history), text(activities))
}

#[test]
fn three_files_round_trip_in_memory() {
    let records = sample_records(40);
    let (opportunities, history, activities) = write_in_memory(&records);
    assert!(opportunities.starts_with(
        "external_id,pipeline,title,account,owner,currency,amount_minor,source,attr.company_size,attr.industry"
    ));
    let reader =
        read_csv(opportunities.as_bytes(), history.as_bytes(), activities.as_bytes()).expect("headers are fine");
    let read_back: Vec<OpportunityRecord> = reader.map(|item| item.expect("row reads").1).collect();
    assert_eq!(read_back, records);
}

#[test]
fn three_files_round_trip_through_a_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let records = sample_records(25);
    let mut writer = create_csv_dir(dir.path(), attribute_names()).expect("files create");
    assert_eq!(writer.write_all(&records).expect("records write"), 25);
    writer.finish().expect("flush succeeds");
    let lines: Vec<u64> =
        open_csv_dir(dir.path()).expect("files open").map(|item| item.expect("row reads").0).collect();
    // Header is line 1; one line per opportunity (no field holds a newline).
    assert_eq!(lines, (2..27).collect::<Vec<u64>>());
}

#[test]
fn an_attribute_without_a_column_is_refused() {
    let mut record = sample_records(10).remove(0);
    record.attributes.insert("budget_owner".to_owned(), "cfo".to_owned());
    let mut writer = CsvWriter::new(Vec::new(), Vec::new(), Vec::new(), attribute_names()).expect("headers write");
    let outcome = writer.write(&record);
    assert!(
        matches!(&outcome, Err(Error::UnknownAttribute { attribute, .. }) if attribute == "budget_owner"),
        "{outcome:?}"
    );
}

#[test]
fn bad_side_rows_fail_their_opportunity_only() {
    let opportunities = "external_id,pipeline,title,account,owner,currency,amount_minor,source,attr.region\n\
        a,sales,A,Acme,rep,USD,100,referral,emea\n\
        b,sales,B,Beta,rep,USD,oops,referral,\n\
        c,sales,C,Gamma,rep,USD,300,referral,\n";
    let history = "external_id,stage,status,occurred_at,actor,reason,note\n\
        a,prospect,open,2024-01-01T00:00:00Z,rep,,\n\
        b,prospect,open,2024-01-02T00:00:00Z,rep,,\n\
        c,prospect,maybe,2024-01-03T00:00:00Z,rep,,\n\
        z,prospect,open,2024-01-04T00:00:00Z,rep,,\n";
    let activities = "external_id,kind,occurred_at,actor,note\n\
        a,call,2024-01-01T10:00:00Z,rep,intro\n";
    let outcomes: Vec<_> = read_csv(opportunities.as_bytes(), history.as_bytes(), activities.as_bytes())
        .expect("headers are fine")
        .collect();
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");

    let (line, first) = outcomes[0].as_ref().expect("a is fine");
    assert_eq!((*line, first.activities.len()), (2, 1));
    assert_eq!(first.attributes.get("region").map(String::as_str), Some("emea"));

    let amount_error = outcomes[1].as_ref().expect_err("b has a bad amount");
    assert_eq!(amount_error.line, 3);
    assert!(amount_error.reason.contains("amount_minor"), "{}", amount_error.reason);

    let status_error = outcomes[2].as_ref().expect_err("c has a bad status");
    assert_eq!(status_error.line, 4);
    assert!(status_error.reason.contains("history.csv line 4"), "{}", status_error.reason);

    // A history row for an id that is not in opportunities.csv is reported.
    let orphan = outcomes[3].as_ref().expect_err("z matches nothing");
    assert_eq!(orphan.line, 5);
    assert!(orphan.reason.contains("history.csv") && orphan.reason.contains('z'), "{}", orphan.reason);
}

#[test]
fn side_rows_out_of_order_are_reported_not_misattributed() {
    let opportunities = "external_id,pipeline,title,account,owner,currency,amount_minor,source\n\
        a,sales,A,,,USD,1,\n\
        b,sales,B,,,USD,2,\n";
    // b's history comes first: a cannot find its rows, b then gets its own.
    let history = "external_id,stage,status,occurred_at,actor,reason,note\n\
        b,prospect,open,2024-01-02T00:00:00Z,,,\n\
        a,prospect,open,2024-01-01T00:00:00Z,,,\n";
    let activities = "external_id,kind,occurred_at,actor,note\n";
    let outcomes: Vec<_> = read_csv(opportunities.as_bytes(), history.as_bytes(), activities.as_bytes())
        .expect("headers are fine")
        .collect();
    let first_error = outcomes[0].as_ref().expect_err("a has no rows in order");
    assert!(first_error.reason.contains("order"), "{}", first_error.reason);
    let (_, second) = outcomes[1].as_ref().expect("b reads");
    assert_eq!(second.history.len(), 1);
    assert_eq!(second.history[0].occurred_at.to_rfc3339(), "2024-01-02T00:00:00+00:00");
    assert!(outcomes[2].is_err(), "a's row is left over and reported: {outcomes:?}");
}
