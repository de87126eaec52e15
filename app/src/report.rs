//! `livesessions reconcile`: the reconciliation report as a table, CSV or JSON.

use livesessions_activities::reconciliation::{Line, Report};
use std::fmt::Write;

/// How to print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for a person.
    Table,
    /// One row per line: `section,key,kind,client_id,session_id,amount_minor,currency,processor_ref,at`.
    Csv,
    /// The report as the API serves it.
    Json,
}

/// One row per movement, with the section it belongs to.
fn rows(report: &Report) -> Vec<(&'static str, &Line, Option<i64>)> {
    let mut rows = Vec::new();
    rows.extend(report.matched.iter().map(|l| ("matched", l, None)));
    rows.extend(report.missing_at_processor.iter().map(|l| ("missing_at_processor", l, None)));
    rows.extend(report.missing_in_ledger.iter().map(|l| ("missing_in_ledger", l, None)));
    rows.extend(
        report
            .amount_mismatches
            .iter()
            .map(|m| ("amount_mismatch", &m.ledger, Some(m.processor_amount_minor))),
    );
    rows.extend(report.outstanding.iter().map(|l| ("outstanding", l, None)));
    rows.extend(
        report
            .collected_but_outstanding
            .iter()
            .map(|m| ("collected_but_outstanding", &m.ledger, Some(m.processor_amount_minor))),
    );
    rows.extend(report.collected.iter().map(|l| ("collected", l, None)));
    rows.extend(report.waived.iter().map(|l| ("waived", l, None)));
    rows.extend(report.written_off.iter().map(|l| ("written_off", l, None)));
    rows.extend(report.authorizations.iter().map(|l| ("authorization", l, None)));
    rows
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: ReportFormat) -> anyhow::Result<String> {
    let mut out = String::new();
    match format {
        ReportFormat::Json => out = serde_json::to_string_pretty(report)?,
        ReportFormat::Csv => {
            writeln!(
                out,
                "section,key,kind,client_id,session_id,amount_minor,currency,processor_ref,processor_amount_minor,at"
            )?;
            for (section, line, processor_amount) in rows(report) {
                let session = line.session_id.map(|s| s.to_string()).unwrap_or_default();
                let reference = line.processor_ref.clone().unwrap_or_default();
                let processor = processor_amount.map(|a| a.to_string()).unwrap_or_default();
                writeln!(
                    out,
                    "{section},{},{},{},{session},{},{},{reference},{processor},{}",
                    line.key,
                    line.kind,
                    line.client_id,
                    line.amount_minor,
                    line.currency,
                    line.at.to_rfc3339()
                )?;
            }
        }
        ReportFormat::Table => {
            writeln!(
                out,
                "Reconciliation of {} (UTC): {}",
                report.date,
                if report.is_clean() { "clean" } else { "DISCREPANCIES" }
            )?;
            writeln!(
                out,
                "{:<25} {:<23} {:>12} {:<4} {:<36} KEY",
                "SECTION", "KIND", "AMOUNT", "CUR", "PROCESSOR REF"
            )?;
            for (section, line, processor_amount) in rows(report) {
                let amount = match processor_amount {
                    Some(theirs) => format!("{}≠{theirs}", line.amount_minor),
                    None => line.amount_minor.to_string(),
                };
                let reference = line.processor_ref.as_deref().unwrap_or("-");
                writeln!(
                    out,
                    "{section:<25} {:<23} {amount:>12} {:<4} {reference:<36} {}",
                    line.kind, line.currency, line.key
                )?;
            }
            let sections = [
                ("Totals by kind and currency", &report.totals),
                ("Owed fees", &report.fee_collection),
            ];
            for (title, totals) in sections {
                writeln!(out, "\n{title}:")?;
                for total in totals {
                    writeln!(
                        out,
                        "  {:<23} {:<4} {:>5} × {:>12}",
                        total.kind, total.currency, total.count, total.amount_minor
                    )?;
                }
            }
        }
    }
    Ok(out)
}
