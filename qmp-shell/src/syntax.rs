//! The command-line language: qmp-shell's `name key=value ...` syntax, dotted keys,
//! JSON values, `transaction( ... )` and raw JSON requests, parsed into untyped
//! statements (typing against the schema happens in `typing`).

use serde_json::Value;

/// A whitespace-separated word of a line; quotes and brackets keep spaces inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text as typed (quotes included).
    pub text: String,
    /// Byte offset of its first character in the input.
    pub start: usize,
}

/// The value part of `key=value` before typing.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// Unquoted text; its JSON type comes from the schema.
    Text(String),
    /// A quoted string or a JSON object/array: taken as written.
    Json(Value),
}

/// One `key=value` argument; `key` may be dotted.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The key as typed, e.g. `file.driver`.
    pub key: String,
    /// The value.
    pub value: Lit,
}

/// A parsed line (or several, for a multi-line transaction).
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// Nothing to do.
    Empty,
    /// A raw JSON request, sent as written.
    Raw(Value),
    /// `name key=value ...`.
    Command {
        /// Command name.
        name: String,
        /// Its arguments in order.
        args: Vec<Arg>,
    },
    /// `transaction( action args ; ... ) [key=value ...]`.
    Transaction {
        /// Each action's type and arguments.
        actions: Vec<(String, Vec<Arg>)>,
        /// Arguments after the closing parenthesis (e.g. `properties.completion-mode=grouped`).
        args: Vec<Arg>,
    },
    /// `help [COMMAND]` (or `?`).
    Help(Option<String>),
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// The input stops inside a quote, a JSON value or a transaction: read another line.
    Incomplete,
    /// Anything else, with a message.
    Invalid(String),
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyntaxError::Incomplete => f.write_str("incomplete input"),
            SyntaxError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SyntaxError {}

/// Splits `input` into words. Whitespace inside `"..."`, `'...'`, `{...}` and `[...]`
/// does not split; `;`, `(` and `)` outside them are words of their own when they
/// stand alone or end a word (`transaction(`, `x=1;`). Returns the words and whether
/// the input ended inside a quote or bracket.
pub fn tokenize(input: &str) -> (Vec<Token>, bool) {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let flush = |cur: &mut String, start: usize, tokens: &mut Vec<Token>| {
        if !cur.is_empty() {
            tokens.push(Token {
                text: std::mem::take(cur),
                start,
            });
        }
    };
    for (i, c) in input.char_indices() {
        if let Some(q) = quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && quote.is_none() {
            if c == '\n' {
                // A line break ends a transaction action, like `;`.
                flush(&mut cur, start, &mut tokens);
                tokens.push(Token {
                    text: ";".into(),
                    start: i,
                });
                continue;
            }
            if c.is_whitespace() {
                flush(&mut cur, start, &mut tokens);
                continue;
            }
            // `transaction(` keeps its word and the parenthesis stands alone.
            if c == ';' || c == ')' || (c == '(' && !cur.contains('=')) {
                flush(&mut cur, start, &mut tokens);
                tokens.push(Token {
                    text: c.to_string(),
                    start: i,
                });
                continue;
            }
        }
        if cur.is_empty() {
            start = i;
        }
        cur.push(c);
    }
    flush(&mut cur, start, &mut tokens);
    (tokens, depth > 0 || quote.is_some())
}

/// Parses the value text of `key=value`.
pub fn parse_value(text: &str) -> Result<Lit, String> {
    let first = text.chars().next();
    match first {
        Some('{') | Some('[') | Some('"') => serde_json::from_str(text)
            .map(Lit::Json)
            .map_err(|e| format!("bad JSON value {text}: {e}")),
        Some('\'') => {
            let inner = text
                .strip_prefix('\'')
                .and_then(|t| t.strip_suffix('\''))
                .filter(|_| text.len() >= 2)
                .ok_or_else(|| format!("unterminated quote in {text}"))?;
            Ok(Lit::Json(Value::String(inner.to_owned())))
        }
        _ => Ok(Lit::Text(text.to_owned())),
    }
}

fn parse_arg(tok: &Token) -> Result<Arg, SyntaxError> {
    let Some((key, value)) = tok.text.split_once('=') else {
        return Err(SyntaxError::Invalid(format!(
            "expected key=value, found '{}'",
            tok.text
        )));
    };
    if key.is_empty() || key.starts_with('.') || key.ends_with('.') || key.contains("..") {
        return Err(SyntaxError::Invalid(format!(
            "bad key '{key}' in '{}'",
            tok.text
        )));
    }
    if key.contains(['"', '\'', '{', '[']) {
        return Err(SyntaxError::Invalid(format!(
            "bad key '{key}' (quotes and brackets belong in values)"
        )));
    }
    Ok(Arg {
        key: key.to_owned(),
        value: parse_value(value).map_err(SyntaxError::Invalid)?,
    })
}

fn parse_args(tokens: &[Token]) -> Result<Vec<Arg>, SyntaxError> {
    tokens.iter().map(parse_arg).collect()
}

/// Parses one statement. `input` may span lines (a transaction or a JSON request
/// broken over several); [`SyntaxError::Incomplete`] asks for another line.
pub fn parse(input: &str) -> Result<Statement, SyntaxError> {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(Statement::Empty);
    }
    if trimmed.starts_with('{') {
        let (_, open) = tokenize(trimmed);
        if open {
            return Err(SyntaxError::Incomplete);
        }
        return serde_json::from_str(trimmed)
            .map(Statement::Raw)
            .map_err(|e| SyntaxError::Invalid(format!("bad JSON request: {e}")));
    }
    // Newlines end transaction actions; elsewhere they are plain whitespace.
    let (tokens, open) = tokenize(input);
    if open {
        return Err(SyntaxError::Incomplete);
    }
    let tokens: Vec<Token> = tokens;
    let Some(first) = tokens.iter().position(|t| t.text != ";") else {
        return Ok(Statement::Empty);
    };
    let tokens = &tokens[first..];
    let name = &tokens[0].text;
    if name == "help" || name == "?" {
        let rest: Vec<&Token> = tokens[1..].iter().filter(|t| t.text != ";").collect();
        return match rest.as_slice() {
            [] => Ok(Statement::Help(None)),
            [one] => Ok(Statement::Help(Some(one.text.clone()))),
            _ => Err(SyntaxError::Invalid("usage: help [COMMAND]".into())),
        };
    }
    if tokens.get(1).is_some_and(|t| t.text == "(") {
        if name != "transaction" {
            return Err(SyntaxError::Invalid(format!(
                "only 'transaction' takes '(' (found '{name} (')"
            )));
        }
        return parse_transaction(&tokens[2..]);
    }
    let body: Vec<Token> = tokens[1..]
        .iter()
        .filter(|t| t.text != ";")
        .cloned()
        .collect();
    if let Some(bad) = body.iter().find(|t| t.text == "(" || t.text == ")") {
        return Err(SyntaxError::Invalid(format!("unexpected '{}'", bad.text)));
    }
    validate_name(name)?;
    Ok(Statement::Command {
        name: name.clone(),
        args: parse_args(&body)?,
    })
}

fn validate_name(name: &str) -> Result<(), SyntaxError> {
    if name.contains(['=', '"', '\'', '{', '[', '}', ']']) {
        return Err(SyntaxError::Invalid(format!(
            "expected a command name, found '{name}'"
        )));
    }
    Ok(())
}

fn parse_transaction(tokens: &[Token]) -> Result<Statement, SyntaxError> {
    let Some(close) = tokens.iter().position(|t| t.text == ")") else {
        return Err(SyntaxError::Incomplete);
    };
    let mut actions = Vec::new();
    for group in tokens[..close].split(|t| t.text == ";") {
        let Some((name, rest)) = group.split_first() else {
            continue;
        };
        if name.text == "(" {
            return Err(SyntaxError::Invalid("nested '(' in transaction".into()));
        }
        validate_name(&name.text)?;
        actions.push((name.text.clone(), parse_args(rest)?));
    }
    let after: Vec<Token> = tokens[close + 1..]
        .iter()
        .filter(|t| t.text != ";")
        .cloned()
        .collect();
    if let Some(bad) = after.iter().find(|t| t.text == "(" || t.text == ")") {
        return Err(SyntaxError::Invalid(format!(
            "unexpected '{}' after transaction",
            bad.text
        )));
    }
    Ok(Statement::Transaction {
        actions,
        args: parse_args(&after)?,
    })
}

/// Parses a statement given as separate words (the one-shot command line, where the
/// user's shell already split and unquoted them): each word after the command name
/// is one `key=value`, spaces included. Raw JSON and transactions are re-joined
/// and parsed as text.
pub fn parse_words(words: &[String]) -> Result<Statement, SyntaxError> {
    let Some((name, rest)) = words.split_first() else {
        return Ok(Statement::Empty);
    };
    let textual = name.starts_with('{')
        || name.ends_with('(')
        || name == "help"
        || rest.iter().any(|w| w == "(" || w.starts_with('('));
    if textual {
        return parse(&words.join(" "));
    }
    validate_name(name)?;
    let args = rest
        .iter()
        .map(|w| {
            parse_arg(&Token {
                text: w.clone(),
                start: 0,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Statement::Command {
        name: name.clone(),
        args,
    })
}
