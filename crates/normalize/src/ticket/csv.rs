//! CSV ticket exports (any system's report or saved view): a header row, then one ticket per
//! row, read with a column mapping. Without a mapping file the usual header names are tried
//! (`id`/`ticket_id`/`key`/`number`, `created`/`created_at`/`sys_created_on`, …), case- and
//! space-insensitively. Each bad row becomes its own error naming the line and column.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;

use mfascope_core::ticket::Ticket;

use super::{TicketConfig, finish, parse_time};
use crate::pseudonym::Pseudonymizer;

/// Which header names hold which ticket field (`--ticket-columns FILE`, TOML).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// Ticket id column.
    pub id: Option<String>,
    /// Creation time column.
    pub created: Option<String>,
    /// Last update column.
    pub updated: Option<String>,
    /// Requester (email or user id) column.
    pub requester: Option<String>,
    /// Subject or summary column.
    pub subject: Option<String>,
    /// Status column.
    pub status: Option<String>,
    /// Category or type column.
    pub category: Option<String>,
    /// Tags or labels column.
    pub tags: Option<String>,
    /// What separates tags in the tags column (default `,`; `;` and `|` are common too).
    pub tags_separator: Option<String>,
}

impl Columns {
    /// A mapping from a TOML file; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Columns, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("ticket columns {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("ticket columns {}: {e}", path.display()))
    }
}

/// Header names tried for each field when the mapping does not name one.
const GUESSES: [(&str, &[&str]); 8] = [
    (
        "id",
        &["id", "ticket id", "ticket_id", "key", "issue key", "number"],
    ),
    (
        "created",
        &[
            "created",
            "created at",
            "created_at",
            "sys_created_on",
            "opened_at",
            "opened",
        ],
    ),
    (
        "updated",
        &["updated", "updated at", "updated_at", "sys_updated_on"],
    ),
    (
        "requester",
        &[
            "requester",
            "requester email",
            "requester_email",
            "reporter",
            "caller",
            "caller_id",
            "email",
        ],
    ),
    (
        "subject",
        &["subject", "summary", "short_description", "title"],
    ),
    ("status", &["status", "state"]),
    (
        "category",
        &["category", "type", "issue type", "request type"],
    ),
    ("tags", &["tags", "labels", "tag"]),
];

/// One CSV row's outcome: its line, its byte range in the file, and the ticket or why not.
pub struct Row {
    /// 1-based line of the row's start.
    pub line: u64,
    /// Bytes of the row within the data.
    pub bytes: Range<usize>,
    /// The ticket, or the reason naming the column.
    pub ticket: Result<Ticket, String>,
}

/// Every row of a CSV export. A header that lacks the id or created column fails the whole
/// file, as one row (line 1) with the reason.
pub fn rows(data: &[u8], cfg: &TicketConfig, pseudonymizer: Option<&Pseudonymizer>) -> Vec<Row> {
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(data);
    let header_end = |r: &::csv::Reader<&[u8]>| r.position().byte() as usize;
    let headers = match reader.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return vec![Row {
                line: 1,
                bytes: 0..data.len(),
                ticket: Err(format!("csv header: {e}")),
            }];
        }
    };
    let index = match resolve(&headers, &cfg.columns) {
        Ok(i) => i,
        Err(reason) => {
            return vec![Row {
                line: 1,
                bytes: 0..header_end(&reader).min(data.len()),
                ticket: Err(reason),
            }];
        }
    };
    let sep = cfg.columns.tags_separator.as_deref().unwrap_or(",");
    let mut out = Vec::new();
    let mut record = ::csv::ByteRecord::new();
    loop {
        let start = reader.position().clone();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let end = reader.position().byte() as usize;
                let bytes = start.byte() as usize..end.min(data.len());
                let line = record
                    .position()
                    .map_or(start.line(), ::csv::Position::line);
                let ticket =
                    map_row(&record, &headers, &index, sep).map(|t| finish(t, cfg, pseudonymizer));
                out.push(Row {
                    line,
                    bytes,
                    ticket,
                });
            }
            Err(e) => {
                let end = reader.position().byte() as usize;
                out.push(Row {
                    line: start.line(),
                    bytes: start.byte() as usize
                        ..end.max(start.byte() as usize + 1).min(data.len()),
                    ticket: Err(format!("csv: {e}")),
                });
                if end <= start.byte() as usize {
                    break;
                }
            }
        }
    }
    out
}

/// Column index per field, in [`GUESSES`] order.
type Index = [Option<usize>; GUESSES.len()];

fn resolve(headers: &::csv::ByteRecord, cols: &Columns) -> Result<Index, String> {
    let norm = |s: &[u8]| {
        String::from_utf8_lossy(s)
            .trim()
            .trim_start_matches('\u{feff}')
            .to_lowercase()
            .replace(['_', '-'], " ")
    };
    let names: Vec<String> = headers.iter().map(norm).collect();
    let configured = [
        &cols.id,
        &cols.created,
        &cols.updated,
        &cols.requester,
        &cols.subject,
        &cols.status,
        &cols.category,
        &cols.tags,
    ];
    let mut index: Index = [None; GUESSES.len()];
    for (i, ((field, guesses), named)) in GUESSES.iter().zip(configured).enumerate() {
        index[i] = match named {
            Some(name) => {
                let want = norm(name.as_bytes());
                Some(names.iter().position(|n| *n == want).ok_or_else(|| {
                    format!(
                        "csv header: no column {name:?} (mapped to {field}); the header has {}",
                        names.join(", ")
                    )
                })?)
            }
            None => guesses
                .iter()
                .find_map(|g| names.iter().position(|n| *n == norm(g.as_bytes()))),
        };
    }
    for (i, field) in [(0, "id"), (1, "created")] {
        if index[i].is_none() {
            return Err(format!(
                "csv header: no {field} column (tried {}); name it in --ticket-columns",
                GUESSES[i].1.join(", ")
            ));
        }
    }
    Ok(index)
}

fn map_row(
    record: &::csv::ByteRecord,
    headers: &::csv::ByteRecord,
    index: &Index,
    sep: &str,
) -> Result<Ticket, String> {
    let cell = |i: usize| -> Result<Option<String>, String> {
        let Some(col) = index[i] else { return Ok(None) };
        let Some(bytes) = record.get(col) else {
            return Ok(None);
        };
        let s = std::str::from_utf8(bytes).map_err(|e| {
            format!(
                "column {:?}: invalid UTF-8 at byte {}",
                String::from_utf8_lossy(&headers[col]),
                e.valid_up_to()
            )
        })?;
        Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
    };
    let column =
        |i: usize| String::from_utf8_lossy(&headers[index[i].expect("resolved")]).into_owned();
    let id = cell(0)?.ok_or_else(|| format!("column {:?}: empty ticket id", column(0)))?;
    let created = cell(1)?.ok_or_else(|| format!("column {:?}: empty creation time", column(1)))?;
    let time = |i: usize, s: &str| parse_time(&format!("column {:?}", column(i)), s);
    Ok(Ticket {
        id,
        created: time(1, &created)?,
        updated: cell(2)?.map(|s| time(2, &s)).transpose()?,
        system: "csv",
        requester: cell(3)?,
        subject: cell(4)?,
        status: cell(5)?,
        category: cell(6)?,
        tags: cell(7)?
            .map(|t| t.split(sep).map(|s| s.trim().to_string()).collect())
            .unwrap_or_default(),
        match_reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_map_by_guessed_headers_and_bad_rows_name_line_and_column() {
        let data = b"Ticket ID,Created At,Requester Email,Subject,Tags\n\
            T-1,2024-05-01 10:00:00,ann@example.com,Lost phone,\"mfa, urgent\"\n\
            T-2,not a date,bob@example.com,Printer,\n\
            T-3,2024-05-02T08:00:00Z,,VPN down,\n";
        let rows = rows(data, &TicketConfig::default(), None);
        assert_eq!(rows.len(), 3);
        let t = rows[0].ticket.as_ref().unwrap();
        assert_eq!(
            (t.id.as_str(), t.requester.as_deref()),
            ("T-1", Some("ann@example.com"))
        );
        assert_eq!(t.tags, ["mfa", "urgent"]);
        assert_eq!(t.match_reason.as_deref(), Some("tag: mfa"));
        assert_eq!(rows[1].line, 3);
        let e = rows[1].ticket.as_ref().unwrap_err();
        assert!(
            e.starts_with("column \"Created At\": \"not a date\" is not a time"),
            "{e}"
        );
        assert_eq!(&data[rows[1].bytes.clone()][..4], b"T-2,");
        assert_eq!(rows[2].ticket.as_ref().unwrap().match_reason, None);
    }

    #[test]
    fn a_header_without_the_mapped_column_fails_the_file_once() {
        let cfg = TicketConfig {
            columns: Columns {
                id: Some("Case".into()),
                ..Columns::default()
            },
            ..TicketConfig::default()
        };
        let rows = rows(b"id,created\n1,2024-01-01\n", &cfg, None);
        assert_eq!(rows.len(), 1);
        let e = rows[0].ticket.as_ref().unwrap_err();
        assert!(e.contains("no column \"Case\" (mapped to id)"), "{e}");
    }
}
