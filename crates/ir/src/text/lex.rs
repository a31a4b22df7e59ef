//! Tokens of the text form.

/// One token and the line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A bare word: names, op types, keywords, dtypes.
    Word(String),
    /// A double-quoted string (bytes; may be non-UTF-8 through `\xNN`).
    Str(Vec<u8>),
    Int(i64),
    /// A float literal, kept as written.
    Float(String),
    /// One of `= , : ( ) [ ] { } @ ?`, or `...` as '.'.
    Punct(char),
}

/// Splits `src` into tokens with their line numbers; `#` starts a comment.
pub fn lex(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            _ if c.is_ascii_whitespace() => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let (s, next) = string(b, i + 1).map_err(|e| format!("line {line}: {e}"))?;
                out.push((Tok::Str(s), line));
                i = next;
            }
            b'.' if b[i..].starts_with(b"...") => {
                out.push((Tok::Punct('.'), line));
                i += 3;
            }
            b'=' | b',' | b':' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'@' | b'?' => {
                out.push((Tok::Punct(c as char), line));
                i += 1;
            }
            b'-' | b'+' | b'0'..=b'9' => {
                let (t, next) = number(src, i).map_err(|e| format!("line {line}: {e}"))?;
                out.push((t, line));
                i = next;
            }
            _ if is_word_start(c) => {
                let start = i;
                while i < b.len() && is_word_char(b[i]) {
                    i += 1;
                }
                out.push((Tok::Word(src[start..i].to_string()), line));
            }
            _ => {
                return Err(format!(
                    "line {line}: unexpected character '{}'",
                    src[i..].chars().next().unwrap_or('?')
                ));
            }
        }
    }
    Ok(out)
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || matches!(c, b'_' | b'/' | b'.')
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b'.' | b'-')
}

fn string(b: &[u8], mut i: usize) -> Result<(Vec<u8>, usize), String> {
    let mut s = Vec::new();
    while i < b.len() {
        match b[i] {
            b'"' => return Ok((s, i + 1)),
            b'\\' => {
                let e = *b.get(i + 1).ok_or("unterminated escape")?;
                i += 2;
                match e {
                    b'n' => s.push(b'\n'),
                    b't' => s.push(b'\t'),
                    b'"' | b'\\' => s.push(e),
                    b'x' => {
                        let hex = b
                            .get(i..i + 2)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .ok_or("bad \\x escape")?;
                        s.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
                        i += 2;
                    }
                    _ => return Err(format!("unknown escape '\\{}'", e as char)),
                }
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    Err("unterminated string".into())
}

/// An integer or float, including `-inf`; `+`/`-` must be followed by a digit or `inf`.
fn number(src: &str, start: usize) -> Result<(Tok, usize), String> {
    let b = src.as_bytes();
    let mut i = start;
    if matches!(b[i], b'-' | b'+') {
        i += 1;
        if src[i..].starts_with("inf") {
            return Ok((Tok::Float(src[start..i + 3].to_string()), i + 3));
        }
    }
    let mut float = false;
    while i < b.len() {
        let c = b[i];
        let exp_sign = matches!(c, b'-' | b'+') && i > start && matches!(b[i - 1], b'e' | b'E');
        if c.is_ascii_digit() || exp_sign {
            i += 1;
        } else if matches!(c, b'.' | b'e' | b'E') && !b[i..].starts_with(b"...") {
            float = true;
            i += 1;
        } else {
            break;
        }
    }
    let text = &src[start..i];
    if float {
        text.parse::<f64>()
            .map_err(|_| format!("bad number '{text}'"))?;
        Ok((Tok::Float(text.to_string()), i))
    } else {
        let v = text
            .parse::<i64>()
            .map_err(|_| format!("bad number '{text}'"))?;
        Ok((Tok::Int(v), i))
    }
}
