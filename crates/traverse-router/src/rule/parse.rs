//! Lexer and recursive-descent parser for the rule grammar.
//!
//! The lexer never fails: characters it cannot use and unterminated strings
//! become tokens, so the parser reports problems in source order and with the
//! context of what it expected at that point.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Expr, HostPattern, Interner, Matcher, ParseError, Pattern};

/// Matcher kinds; `MATCHERS` gives their canonical names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    HostRegexp,
    Path,
    PathPrefix,
    PathRegexp,
    Header,
    HeaderRegexp,
    Method,
    Query,
    QueryRegexp,
    ClientIp,
}

/// Canonical matcher names, in the order listed in error messages.
const MATCHERS: [(&str, Kind); 11] = [
    ("Host", Kind::Host),
    ("HostRegexp", Kind::HostRegexp),
    ("Path", Kind::Path),
    ("PathPrefix", Kind::PathPrefix),
    ("PathRegexp", Kind::PathRegexp),
    ("Header", Kind::Header),
    ("HeaderRegexp", Kind::HeaderRegexp),
    ("Method", Kind::Method),
    ("Query", Kind::Query),
    ("QueryRegexp", Kind::QueryRegexp),
    ("ClientIP", Kind::ClientIp),
];

pub(super) fn parse(text: &str, interner: &mut Interner) -> Result<Expr, ParseError> {
    let tokens = lex(text);
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
        interner,
    };
    if matches!(parser.peek().kind, Tok::End) {
        return Err(err(1, "empty rule"));
    }
    let expr = parser.or()?;
    let next = parser.peek();
    match &next.kind {
        Tok::End => Ok(expr),
        Tok::Invalid(c) => Err(err(next.column, invalid_char(*c))),
        Tok::Unterminated => Err(err(next.column, "unterminated string")),
        other => Err(err(
            next.column,
            format!(
                "unexpected {}; expected `&&`, `||` or end of rule",
                other.describe()
            ),
        )),
    }
}

fn err(column: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        column,
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'s> {
    Ident(&'s str),
    Str(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
    /// A character that starts no token (includes a lone `&` or `|`).
    Invalid(char),
    /// A string whose closing quote is missing; always the last token.
    Unterminated,
    End,
}

impl Tok<'_> {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Str(_) => "string argument".to_owned(),
            Tok::LParen => "`(`".to_owned(),
            Tok::RParen => "`)`".to_owned(),
            Tok::Comma => "`,`".to_owned(),
            Tok::And => "`&&`".to_owned(),
            Tok::Or => "`||`".to_owned(),
            Tok::Not => "`!`".to_owned(),
            Tok::Invalid(c) => format!("character `{c}`"),
            Tok::Unterminated => "unterminated string".to_owned(),
            Tok::End => "end of rule".to_owned(),
        }
    }

    fn is_operator(&self) -> bool {
        matches!(self, Tok::And | Tok::Or | Tok::Not)
    }
}

#[derive(Debug, Clone)]
struct Token<'s> {
    kind: Tok<'s>,
    /// 1-based character column of the token's first character.
    column: usize,
}

fn lex(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    // (byte offset, char) pairs with the 1-based column derived from the position.
    let mut chars = text.char_indices().enumerate().peekable();
    while let Some((idx, (start, c))) = chars.next() {
        let column = idx + 1;
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '!' => Tok::Not,
            '&' | '|' => {
                if chars.peek().is_some_and(|&(_, (_, n))| n == c) {
                    chars.next();
                    if c == '&' {
                        Tok::And
                    } else {
                        Tok::Or
                    }
                } else {
                    Tok::Invalid(c)
                }
            }
            '`' => {
                let mut value = String::new();
                let mut closed = false;
                for (_, (_, n)) in chars.by_ref() {
                    if n == '`' {
                        closed = true;
                        break;
                    }
                    value.push(n);
                }
                if closed {
                    Tok::Str(value)
                } else {
                    Tok::Unterminated
                }
            }
            '"' => {
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, (_, n))) = chars.next() {
                    match n {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.peek() {
                            Some(&(_, (_, e @ ('"' | '\\')))) => {
                                chars.next();
                                value.push(e);
                            }
                            // Other escapes are kept verbatim so regexes such as
                            // "\d+" can be written without doubling backslashes.
                            _ => value.push('\\'),
                        },
                        n => value.push(n),
                    }
                }
                if closed {
                    Tok::Str(value)
                } else {
                    Tok::Unterminated
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = start + c.len_utf8();
                while let Some(&(_, (i, n))) = chars.peek() {
                    if !(n.is_ascii_alphanumeric() || n == '_') {
                        break;
                    }
                    end = i + n.len_utf8();
                    chars.next();
                }
                Tok::Ident(text.get(start..end).unwrap_or_default())
            }
            c => Tok::Invalid(c),
        };
        tokens.push(Token { kind, column });
    }
    tokens.push(Token {
        kind: Tok::End,
        column: text.chars().count() + 1,
    });
    tokens
}

struct Parser<'s, 'i> {
    /// Always ends with `Tok::End`; `pos` never moves past it.
    tokens: Vec<Token<'s>>,
    pos: usize,
    /// Current `(`/`!` nesting, capped so hostile rules cannot overflow the
    /// stack in the parser, in evaluation or when the AST is dropped.
    depth: usize,
    /// Where compiled regexes come from, shared with other rules.
    interner: &'i mut Interner,
}

const MAX_DEPTH: usize = 100;

impl<'s> Parser<'s, '_> {
    fn peek(&self) -> &Token<'s> {
        // `pos` stops at the trailing End token, which `lex` always pushes.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token<'s> {
        let token = self.peek().clone();
        if !matches!(token.kind, Tok::End) {
            self.pos += 1;
        }
        token
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.and()?];
        while matches!(self.peek().kind, Tok::Or) {
            self.bump();
            items.push(self.and()?);
        }
        Ok(flatten(items, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.unary()?];
        while matches!(self.peek().kind, Tok::And) {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(flatten(items, Expr::And))
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if matches!(self.peek().kind, Tok::Not) {
            let not = self.bump();
            self.enter(not.column)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn enter(&mut self, column: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                column,
                format!("rule nested too deeply (more than {MAX_DEPTH} levels of `(` or `!`)"),
            ));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let token = self.peek().clone();
        match token.kind {
            Tok::LParen => {
                self.bump();
                self.enter(token.column)?;
                let expr = self.or()?;
                self.depth -= 1;
                let close = self.peek();
                if !matches!(close.kind, Tok::RParen) {
                    return Err(err(
                        close.column,
                        format!(
                            "missing `)` to close `(` at column {}, found {}",
                            token.column,
                            close.kind.describe()
                        ),
                    ));
                }
                self.bump();
                Ok(expr)
            }
            Tok::Ident(name) => {
                self.bump();
                self.matcher(name, token.column)
            }
            kind => Err(self.expected_operand(&kind, token.column)),
        }
    }

    /// Error for a token that cannot start an operand.
    fn expected_operand(&self, kind: &Tok<'_>, column: usize) -> ParseError {
        let previous = self.pos.checked_sub(1).and_then(|i| self.tokens.get(i));
        match (kind, previous) {
            (Tok::Unterminated, _) => err(column, "unterminated string"),
            (Tok::Invalid(c), _) => err(column, invalid_char(*c)),
            (Tok::End | Tok::And | Tok::Or | Tok::RParen | Tok::Comma, Some(prev))
                if prev.kind.is_operator() =>
            {
                err(
                    prev.column,
                    format!(
                        "dangling operator {}: expected a matcher, `(` or `!` after it",
                        prev.kind.describe()
                    ),
                )
            }
            _ => err(
                column,
                format!("expected a matcher, `(` or `!`, found {}", kind.describe()),
            ),
        }
    }

    fn matcher(&mut self, name: &str, column: usize) -> Result<Expr, ParseError> {
        let Some(&(canonical, kind)) = MATCHERS.iter().find(|(m, _)| is_spelling_of(name, m))
        else {
            let valid: Vec<&str> = MATCHERS.iter().map(|(m, _)| *m).collect();
            return Err(err(
                column,
                format!(
                    "unknown matcher `{name}`; valid matchers are {}",
                    valid.join(", ")
                ),
            ));
        };
        let open = self.bump();
        if !matches!(open.kind, Tok::LParen) {
            return Err(err(
                open.column,
                format!("missing `(` after `{name}`, found {}", open.kind.describe()),
            ));
        }
        let mut args: Vec<(String, usize)> = Vec::new();
        if matches!(self.peek().kind, Tok::RParen) {
            self.bump();
        } else {
            loop {
                let arg = self.bump();
                match arg.kind {
                    Tok::Str(value) => args.push((value, arg.column)),
                    Tok::Unterminated => return Err(err(arg.column, "unterminated string")),
                    Tok::Invalid(c) => return Err(err(arg.column, invalid_char(c))),
                    Tok::End => {
                        return Err(err(arg.column, format!("missing `)` to close `{name}(`")))
                    }
                    other => {
                        return Err(err(
                            arg.column,
                            format!(
                                "expected a quoted argument (`...` or \"...\"), found {}",
                                other.describe()
                            ),
                        ))
                    }
                }
                let sep = self.bump();
                match sep.kind {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    Tok::End => {
                        return Err(err(sep.column, format!("missing `)` to close `{name}(`")))
                    }
                    Tok::Unterminated => return Err(err(sep.column, "unterminated string")),
                    Tok::Invalid(c) => return Err(err(sep.column, invalid_char(c))),
                    other => {
                        return Err(err(
                            sep.column,
                            format!(
                                "expected `,` or `)` after argument of `{name}`, found {}",
                                other.describe()
                            ),
                        ))
                    }
                }
            }
        }
        build_matcher(kind, canonical, args, column, self.interner).map(Expr::Match)
    }
}

fn flatten(mut items: Vec<Expr>, wrap: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    wrap(exact(items))
}

/// `items` without spare capacity: parsed rules are kept for the life of the table,
/// tens of thousands of them, and a `Vec` grown by pushing holds room for four.
fn exact<T>(mut items: Vec<T>) -> Vec<T> {
    items.shrink_to_fit();
    items
}

fn invalid_char(c: char) -> String {
    match c {
        '&' => "unexpected `&`; did you mean `&&`?".to_owned(),
        '|' => "unexpected `|`; did you mean `||`?".to_owned(),
        c => format!("unexpected character `{c}`"),
    }
}

/// Traefik registers each matcher under its name, lowercase, uppercase and
/// title case (`PathPrefix`, `pathprefix`, `PATHPREFIX`, `Pathprefix`).
fn is_spelling_of(name: &str, canonical: &str) -> bool {
    if name == canonical {
        return true;
    }
    if !name.eq_ignore_ascii_case(canonical) {
        return false;
    }
    // Lowercase and title case both have no uppercase after the first letter
    // (names are ASCII, since they matched `canonical` ignoring ASCII case).
    let rest_lower = !name.bytes().skip(1).any(|b| b.is_ascii_uppercase());
    let all_upper = !name.bytes().any(|b| b.is_ascii_lowercase());
    rest_lower || all_upper
}

fn build_matcher(
    kind: Kind,
    name: &str,
    args: Vec<(String, usize)>,
    column: usize,
    interner: &mut Interner,
) -> Result<Matcher, ParseError> {
    let count_error = |expected: &str, got: usize| {
        let plural = if got == 1 { "" } else { "s" };
        err(
            column,
            format!("`{name}` expects {expected}, got {got} argument{plural}"),
        )
    };
    // Header, HeaderRegexp, QueryRegexp: (key, value) with the value's column.
    let pair = |args: Vec<(String, usize)>| {
        <[(String, usize); 2]>::try_from(args)
            .map(|[(key, _), value]| (key, value))
            .map_err(|args| count_error("2 arguments", args.len()))
    };
    // v2 compatibility: the remaining matchers take one or more alternatives.
    let alternatives = |args: Vec<(String, usize)>| {
        if args.is_empty() {
            Err(count_error("at least 1 argument", 0))
        } else {
            Ok(args)
        }
    };
    Ok(match kind {
        Kind::Host => Matcher::Host(exact(
            alternatives(args)?
                .iter()
                .map(|(host, col)| host_pattern(host, *col))
                .collect::<Result<_, _>>()?,
        )),
        Kind::HostRegexp => Matcher::HostRegexp(patterns(alternatives(args)?, interner)?),
        Kind::Path => Matcher::Path(paths(alternatives(args)?)?),
        Kind::PathPrefix => Matcher::PathPrefix(paths(alternatives(args)?)?),
        Kind::PathRegexp => Matcher::PathRegexp(patterns(alternatives(args)?, interner)?),
        Kind::Header => {
            let (key, (value, _)) = pair(args)?;
            Matcher::Header {
                name: http::HeaderName::from_bytes(key.as_bytes()).ok(),
                value,
            }
        }
        Kind::HeaderRegexp => {
            let (key, (value, col)) = pair(args)?;
            Matcher::HeaderRegexp {
                name: http::HeaderName::from_bytes(key.as_bytes()).ok(),
                regex: bytes_regex(&value, col, interner)?,
            }
        }
        Kind::Method => Matcher::Method(exact(
            alternatives(args)?.into_iter().map(|(m, _)| m).collect(),
        )),
        Kind::Query => {
            let got = args.len();
            let mut values = args.into_iter().map(|(a, _)| a);
            match (values.next(), values.next(), got) {
                (Some(key), Some(value), 2) => Matcher::Query {
                    key,
                    value: Some(value),
                },
                // v2 form `Query(`key=value`)`; without `=` the key must merely be present.
                (Some(first), None, 1) => match first.split_once('=') {
                    Some((key, value)) => Matcher::Query {
                        key: key.to_owned(),
                        value: Some(value.to_owned()),
                    },
                    None => Matcher::Query {
                        key: first,
                        value: None,
                    },
                },
                _ => return Err(count_error("1 or 2 arguments", got)),
            }
        }
        Kind::QueryRegexp => {
            let (key, (value, col)) = pair(args)?;
            Matcher::QueryRegexp {
                key,
                regex: bytes_regex(&value, col, interner)?,
            }
        }
        Kind::ClientIp => Matcher::ClientIp(exact(
            alternatives(args)?
                .iter()
                .map(|(net, col)| ip_net(net, *col))
                .collect::<Result<_, _>>()?,
        )),
    })
}

fn paths(args: Vec<(String, usize)>) -> Result<Vec<String>, ParseError> {
    args.into_iter()
        .map(|(path, col)| {
            if path.starts_with('/') {
                Ok(path)
            } else {
                Err(err(col, format!("path `{path}` must start with `/`")))
            }
        })
        .collect::<Result<_, _>>()
        .map(exact)
}

fn patterns(
    args: Vec<(String, usize)>,
    interner: &mut Interner,
) -> Result<Vec<Pattern>, ParseError> {
    args.into_iter()
        .map(|(pattern, col)| {
            interner
                .pattern(&pattern)
                .map_err(|e| err(col, format!("invalid regex: {e}")))
        })
        .collect::<Result<_, _>>()
        .map(exact)
}

fn bytes_regex(
    pattern: &str,
    column: usize,
    interner: &mut Interner,
) -> Result<std::sync::Arc<super::compiled::Regex>, ParseError> {
    interner
        .bytes_regex(pattern)
        .map_err(|e| err(column, format!("invalid regex: {e}")))
}

fn host_pattern(host: &str, column: usize) -> Result<HostPattern, ParseError> {
    if !host.is_ascii() {
        return Err(err(
            column,
            format!("invalid host `{host}`: non-ASCII characters are not allowed (use the punycode form)"),
        ));
    }
    let normalized = normalize_host_pattern(host);
    if let Some(suffix) = normalized.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') {
            return Err(err(
                column,
                format!("invalid wildcard host `{host}`: expected `*.` followed by a domain"),
            ));
        }
        return Ok(HostPattern::Wildcard(suffix.to_owned()));
    }
    if normalized.contains('*') {
        return Err(err(
            column,
            format!("invalid host `{host}`: `*` is only allowed as the whole leftmost label, as in `*.example.com`"),
        ));
    }
    Ok(HostPattern::Exact(normalized))
}

/// Puts a host pattern in the form request hosts are compared in: lowercase,
/// without IPv6 brackets and without one trailing dot.
fn normalize_host_pattern(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

fn ip_net(arg: &str, column: usize) -> Result<IpNet, ParseError> {
    let parsed = if arg.contains('/') {
        arg.parse::<IpNet>().ok()
    } else {
        arg.parse::<IpAddr>().ok().map(IpNet::from)
    };
    parsed.ok_or_else(|| {
        err(
            column,
            format!("invalid IP address or CIDR `{arg}` for `ClientIP`"),
        )
    })
}
