use std::io::Cursor;

use funnel_dataset::{SimulationConfig, read_jsonl, simulate, write_jsonl};

fn sample_records(count: u64) -> Vec<funnel_dataset::OpportunityRecord> {
    let config = SimulationConfig { opportunities: count, ..SimulationConfig::default() };
    simulate(&config).expect("default config is valid").collect()
}

#[test]
fn written_records_read_back_identical_with_line_numbers() {
    let records = sample_records(60);
    let mut buffer = Vec::new();
    let written = write_jsonl(&mut buffer, &records).expect("writing to memory succeeds");
    assert_eq!(written, 60);

    let mut read_back = Vec::new();
    for item in read_jsonl(Cursor::new(buffer)) {
        let (line, record) = item.expect("every written line parses");
        assert_eq!(line, read_back.len() as u64 + 1, "one record per line");
        read_back.push(record);
    }
    assert_eq!(read_back, records);
}

#[test]
fn bad_lines_are_reported_with_their_line_number_and_reading_goes_on() {
    let records = sample_records(10);
    let good_line = |index: usize| serde_json::to_string(&records[index]).expect("records serialise");
    let missing_history = r#"{"pipeline":"sales","external_id":"x","currency":"USD","amount_minor":1}"#;
    let bad_status = good_line(2).replacen("\"open\"", "\"maybe\"", 1);
    let input = [
        good_line(0),
        "{not json".to_owned(),
        String::new(), // blank lines are skipped, but still counted
        good_line(1),
        missing_history.to_owned(),
        bad_status,
        good_line(3),
    ]
    .join("\n");

    let outcomes: Vec<_> = read_jsonl(Cursor::new(input)).collect();
    assert_eq!(outcomes.len(), 6, "blank line yields nothing: {outcomes:?}");
    let ok_lines: Vec<u64> = outcomes.iter().filter_map(|item| item.as_ref().ok().map(|(line, _)| *line)).collect();
    assert_eq!(ok_lines, [1, 4, 7]);
    let errors: Vec<_> = outcomes.iter().filter_map(|item| item.as_ref().err()).collect();
    let error_lines: Vec<u64> = errors.iter().map(|error| error.line).collect();
    assert_eq!(error_lines, [2, 5, 6]);
    assert!(errors[1].reason.contains("missing field `history`"), "{}", errors[1].reason);
    assert!(errors[2].reason.contains("maybe"), "{}", errors[2].reason);
    let (_, last) = outcomes[5].as_ref().expect("line 7 parses");
    assert_eq!(last, &records[3]);
}

#[test]
fn optional_fields_default_when_absent() {
    let minimal = r#"{"pipeline":"sales","external_id":"m-1","currency":"EUR","amount_minor":500,
        "history":[{"stage":"prospect","status":"open","occurred_at":"2024-03-01T09:00:00Z"}]}"#
        .replace('\n', "");
    let mut outcomes = read_jsonl(Cursor::new(minimal));
    let (line, record) = outcomes.next().expect("one item").expect("minimal record parses");
    assert_eq!(line, 1);
    assert!(record.attributes.is_empty() && record.activities.is_empty() && record.source.is_empty());
    record.validate(&funnel_dataset::default_pipeline()).expect("a minimal open record is valid");
    assert!(outcomes.next().is_none());
}
