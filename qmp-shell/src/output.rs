//! How replies and events are shown: pretty JSON, compact JSON, or a readable table
//! for query commands whose reply has a table's shape.

use serde_json::Value;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tables where one suits, else pretty JSON (the default).
    Auto,
    /// Always pretty JSON.
    Pretty,
    /// Compact JSON, one line per reply (for scripts).
    Json,
}

/// Column choices for replies whose rows nest what matters.
const COLUMNS: &[(&str, &[&str])] = &[
    (
        "query-block",
        &[
            "device",
            "qdev",
            "inserted.node-name",
            "inserted.drv",
            "inserted.file",
            "inserted.ro",
            "removable",
            "locked",
            "tray_open",
        ],
    ),
    (
        "query-named-block-nodes",
        &[
            "node-name",
            "drv",
            "file",
            "ro",
            "image.virtual-size",
            "image.format",
        ],
    ),
    (
        "query-block-jobs",
        &[
            "device", "type", "status", "offset", "len", "speed", "ready",
        ],
    ),
    (
        "query-jobs",
        &[
            "id",
            "type",
            "status",
            "current-progress",
            "total-progress",
            "error",
        ],
    ),
    (
        "query-cpus-fast",
        &[
            "cpu-index",
            "qom-path",
            "thread-id",
            "target",
            "props.core-id",
        ],
    ),
    ("query-chardev", &["label", "filename", "frontend-open"]),
    (
        "query-block-exports",
        &["id", "type", "node-name", "shutting-down"],
    ),
];

/// Renders the `return` value of `command` in `format`.
pub fn render(command: &str, ret: &Value, format: Format) -> String {
    match format {
        Format::Json => ret.to_string(),
        Format::Pretty => pretty(ret),
        Format::Auto => {
            if command == "human-monitor-command" {
                if let Value::String(s) = ret {
                    return s.trim_end_matches(['\r', '\n']).to_owned();
                }
            }
            if command.starts_with("query-") || command.starts_with("guest-get-") {
                if let Some(t) = table(command, ret) {
                    return t;
                }
            }
            pretty(ret)
        }
    }
}

/// Pretty JSON, two-space indent.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        _ => None,
    }
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// Leaves of an object as (dotted key, text), depth-first; `None` when an array
/// holds objects (no flat shape).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) -> Option<()> {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out)?;
            }
        }
        Value::Array(items) => {
            let texts: Option<Vec<String>> = items.iter().map(scalar).collect();
            out.push((prefix.to_owned(), format!("[{}]", texts?.join(", "))));
        }
        _ => out.push((prefix.to_owned(), scalar(v)?)),
    }
    Some(())
}

fn table(command: &str, ret: &Value) -> Option<String> {
    match ret {
        Value::Object(m) if !m.is_empty() => {
            let mut rows = Vec::new();
            flatten("", ret, &mut rows)?;
            if rows.len() > 40 {
                return None;
            }
            let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            Some(
                rows.iter()
                    .map(|(k, v)| format!("{k:<w$}  {v}").trim_end().to_owned())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let columns: Vec<String> = match COLUMNS.iter().find(|(c, _)| *c == command) {
                Some((_, cols)) => cols.iter().map(|c| (*c).to_owned()).collect(),
                None => {
                    // Scalar members in order of first appearance.
                    let mut cols: Vec<String> = Vec::new();
                    for item in items {
                        for (k, v) in item.as_object()? {
                            if scalar(v).is_some() && !cols.contains(k) {
                                cols.push(k.clone());
                            }
                        }
                    }
                    cols
                }
            };
            if columns.is_empty() {
                return None;
            }
            let cells: Vec<Vec<String>> = items
                .iter()
                .map(|item| {
                    columns
                        .iter()
                        .map(|c| at(item, c).and_then(scalar).unwrap_or_else(|| "-".into()))
                        .collect()
                })
                .collect();
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells
                        .iter()
                        .map(|r| r[i].chars().count())
                        .chain([c.rsplit('.').next().unwrap_or(c).len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |row: &[String]| {
                row.iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            // Headers name the member, not its path (`inserted.drv` -> `drv`).
            let headers: Vec<String> = columns
                .iter()
                .map(|c| c.rsplit('.').next().unwrap_or(c).to_owned())
                .collect();
            let mut out = vec![line(&headers)];
            out.extend(cells.iter().map(|r| line(r)));
            Some(out.join("\n"))
        }
        _ => None,
    }
}

/// `YYYY-MM-DD HH:MM:SS.uuuuuu` (UTC) for an event timestamp.
pub fn timestamp(seconds: i64, micros: i64) -> String {
    if seconds < 0 {
        return "(no time)".into();
    }
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// One line for an event: time, name and data.
pub fn event_line(name: &str, data: &Value, seconds: i64, micros: i64, format: Format) -> String {
    if format == Format::Json {
        let mut m = serde_json::Map::new();
        m.insert("event".into(), Value::String(name.to_owned()));
        if !data.is_null() {
            m.insert("data".into(), data.clone());
        }
        m.insert(
            "timestamp".into(),
            serde_json::json!({"seconds": seconds, "microseconds": micros}),
        );
        return Value::Object(m).to_string();
    }
    let when = timestamp(seconds, micros);
    if data.is_null() {
        format!("{when} {name}")
    } else {
        format!("{when} {name} {data}")
    }
}
