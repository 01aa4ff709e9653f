use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use funnel_dataset::{CrmImport, OpportunityRecord, ProblemAction, RecordStatus, crm_pipeline, load_crm};

/// The shared copy of the data set, present on the project's machines but
/// not in a fresh clone.
fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/crm-sales-opportunities");
    if dir.join("sales_pipeline.csv").is_file() {
        return Some(dir);
    }
    eprintln!("skipping: CRM Sales Opportunities data set not found at {}", dir.display());
    None
}

fn load() -> Option<CrmImport> {
    let dir = data_dir()?;
    Some(load_crm(&dir).expect("the published data set loads"))
}

fn record<'a>(import: &'a CrmImport, external_id: &str) -> &'a OpportunityRecord {
    import.records.iter().find(|record| record.external_id == external_id).expect("record is imported")
}

#[test]
fn every_published_row_is_imported_with_its_final_status() {
    let Some(import) = load() else { return };
    assert_eq!(import.records.len(), 8_800);
    let skipped = import.problems.iter().filter(|problem| problem.action == ProblemAction::Skipped).count();
    assert_eq!(skipped, 0, "{:?}", import.problems.iter().find(|problem| problem.action == ProblemAction::Skipped));

    let mut by_outcome: BTreeMap<(String, RecordStatus), usize> = BTreeMap::new();
    let pipeline = crm_pipeline();
    for record in &import.records {
        record.validate(&pipeline).expect("imported records follow FORMAT.md");
        *by_outcome.entry((record.final_stage().to_owned(), record.final_status())).or_default() += 1;
    }
    let expected = [
        (("engaging".to_owned(), RecordStatus::Leaked), 2_473),
        (("engaging".to_owned(), RecordStatus::Open), 1_589),
        (("prospecting".to_owned(), RecordStatus::Open), 500),
        (("won".to_owned(), RecordStatus::Won), 4_238),
    ];
    assert_eq!(by_outcome, BTreeMap::from(expected));
    let unique_ids: HashSet<&str> = import.records.iter().map(|record| record.external_id.as_str()).collect();
    assert_eq!(unique_ids.len(), 8_800);
}

#[test]
fn rows_map_to_the_documented_history_and_amounts() {
    let Some(import) = load() else { return };
    assert_eq!(import.snapshot_date.map(|date| date.to_string()).as_deref(), Some("2017-12-31"));

    // 1C1I7A6R,Moses Frase,GTX Plus Basic,Cancity,Won,10/20/2016,3/1/2017,1054
    let won = record(&import, "1C1I7A6R");
    let stages: Vec<(&str, RecordStatus, String)> = won
        .history
        .iter()
        .map(|entry| (entry.stage.as_str(), entry.status, entry.occurred_at.date_naive().to_string()))
        .collect();
    assert_eq!(
        stages,
        [
            ("prospecting", RecordStatus::Open, "2016-10-20".to_owned()),
            ("engaging", RecordStatus::Open, "2016-10-20".to_owned()),
            ("won", RecordStatus::Won, "2017-03-01".to_owned()),
        ]
    );
    assert_eq!((won.amount_minor, won.currency.as_str(), won.owner.as_str()), (105_400, "USD", "Moses Frase"));
    assert_eq!(won.attributes["sector"], "retail");
    assert_eq!(won.attributes["series"], "GTX");
    assert_eq!(won.attributes["manager"], "Dustin Brinkmann");
    assert_eq!(won.attributes["regional_office"], "Central");

    // KWVA7VR1,Gladys Colclough,GTXPro,Genco Pura Olive Oil Company,Lost,11/4/2016,3/18/2017,0
    let lost = record(&import, "KWVA7VR1");
    let last = &lost.history[lost.history.len() - 1];
    assert_eq!((last.stage.as_str(), last.status, last.reason.as_str()), ("engaging", RecordStatus::Leaked, "lost"));
    assert_eq!(lost.amount_minor, 482_100, "lost deals carry the list price of GTX Pro");
    assert_eq!(lost.attributes["product"], "GTX Pro");

    // 6CWZFOHJ,Anna Snelling,GTX Basic,Green-Plus,Prospecting,,,
    let prospect = record(&import, "6CWZFOHJ");
    assert_eq!(prospect.history.len(), 1);
    assert_eq!(prospect.history[0].occurred_at.to_rfc3339(), "2017-12-31T00:00:00+00:00");
    assert_eq!(prospect.amount_minor, 55_000);
}

#[test]
fn data_as_published_keeps_its_typos() {
    let Some(import) = load() else { return };
    // Acme Corporation's sector is spelled "technolgy" in accounts.csv.
    let acme = import
        .records
        .iter()
        .find(|record| record.account == "Acme Corporation")
        .expect("Acme Corporation has opportunities");
    assert_eq!(acme.attributes["sector"], "technolgy");
}

#[test]
fn empty_accounts_and_the_gtxpro_spelling_are_reported() {
    let Some(import) = load() else { return };
    let empty_account: Vec<_> = import.problems.iter().filter(|problem| problem.reason == "account is empty").collect();
    // 337 Prospecting and 1,088 Engaging rows have no account.
    assert_eq!(empty_account.len(), 1_425);
    // Line 8303: 3LCLVRVV,Anna Snelling,GTX Basic,,Prospecting,,,
    let example = empty_account.iter().find(|problem| problem.external_id == "3LCLVRVV").expect("3LCLVRVV is reported");
    assert_eq!((example.file.as_str(), example.line), ("sales_pipeline.csv", 8_303));
    assert_eq!(example.action.to_string(), "imported with account attributes missing");
    let without_account = record(&import, "3LCLVRVV");
    assert!(!without_account.attributes.contains_key("sector"));
    assert_eq!(without_account.attributes["manager"], "Dustin Brinkmann");

    let gtxpro: Vec<_> = import.problems.iter().filter(|problem| problem.reason.contains("\"GTXPro\"")).collect();
    assert_eq!(gtxpro.len(), 1, "one report for the spelling, with its count");
    assert!(gtxpro[0].reason.contains("1480 rows"), "{}", gtxpro[0].reason);
    assert_eq!(gtxpro[0].action.to_string(), "imported with product GTX Pro");
    assert_eq!((gtxpro[0].line, gtxpro[0].external_id.as_str()), (3, "Z063OYW0"));

    let undated: Vec<_> = import.problems.iter().filter(|problem| problem.reason.contains("no dates")).collect();
    assert_eq!(undated.len(), 1);
    assert!(undated[0].reason.contains("500 rows"), "{}", undated[0].reason);
    assert!(undated[0].action.to_string().contains("2017-12-31"));

    // Nothing else is wrong with the published data.
    assert_eq!(
        import.problems.len(),
        1_425 + 2,
        "{:#?}",
        import.problems.iter().filter(|problem| problem.reason != "account is empty").collect::<Vec<_>>()
    );
}

#[test]
fn broken_rows_are_reported_with_their_line_and_never_dropped_silently() {
    let Some(source_dir) = data_dir() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["accounts.csv", "products.csv", "sales_teams.csv"] {
        std::fs::copy(source_dir.join(file), dir.path().join(file)).expect("copy reference table");
    }
    let pipeline = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n\
        A1,Moses Frase,GTX Basic,Cancity,Won,10/20/2016,3/1/2017,600\n\
        A2,Moses Frase,GTX Basic,Cancity,Won,13/45/2016,3/1/2017,600\n\
        A3,Moses Frase,GTX Basic,Cancity,Lost,3/2/2017,3/1/2017,0\n\
        A4,Moses Frase,GTX Basic,Cancity,Negotiating,3/2/2017,,\n\
        A1,Moses Frase,GTX Basic,Cancity,Engaging,3/2/2017,,\n\
        A5,Nobody Known,GTX Ultra,Unknown Co,Engaging,3/2/2017,,\n\
        A6,Moses Frase,GTX Basic,Cancity,Won,10/20/2016,3/1/2017,lots\n";
    std::fs::write(dir.path().join("sales_pipeline.csv"), pipeline).expect("write pipeline");

    let import = load_crm(dir.path()).expect("loads despite bad rows");
    let imported: Vec<&str> = import.records.iter().map(|record| record.external_id.as_str()).collect();
    assert_eq!(imported, ["A1", "A5", "A6"]);
    let skipped: Vec<(u64, &str)> = import
        .problems
        .iter()
        .filter(|problem| problem.action == ProblemAction::Skipped)
        .map(|problem| (problem.line, problem.external_id.as_str()))
        .collect();
    assert_eq!(skipped, [(3, "A2"), (4, "A3"), (5, "A4"), (6, "A1")]);
    let reason_of = |line: u64| {
        let problem = import.problems.iter().find(|problem| problem.line == line).expect("reported");
        problem.reason.clone()
    };
    assert!(reason_of(3).contains("engage_date \"13/45/2016\""), "{}", reason_of(3));
    assert!(reason_of(4).contains("before engage_date"));
    assert!(reason_of(5).contains("Negotiating"));
    assert!(reason_of(6).contains("earlier"));

    let unknowns: Vec<String> =
        import.problems.iter().filter(|problem| problem.line == 7).map(|problem| problem.action.to_string()).collect();
    assert_eq!(
        unknowns,
        [
            "imported with product attributes missing",
            "imported with amount 0",
            "imported with account attributes missing",
            "imported with team attributes missing"
        ]
    );
    let fallback = record(&import, "A6");
    assert_eq!(fallback.amount_minor, 55_000, "an unreadable close value falls back to the list price");
}
