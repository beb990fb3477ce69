//! `basicAuth` and the htpasswd formats it accepts, `digestAuth` and its htdigest users.

use base64::Engine as _;
use http::HeaderName;
use md5::{Digest as _, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::Origin;

/// HTTP basic authentication against htpasswd users (Traefik `basicAuth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub origin: Origin,
    /// Users in configuration order; a later line for the same user replaces an earlier
    /// one, as in Traefik.
    pub users: Vec<(String, Credential)>,
    /// The `WWW-Authenticate` challenge, `Basic realm="…"`.
    pub challenge: http::HeaderValue,
    pub remove_header: bool,
    /// Header that carries the authenticated user upstream.
    pub header_field: Option<HeaderName>,
}

impl BasicAuth {
    /// The credential of `user`, or, for an unknown user, the first one, so an unknown
    /// user costs the same time to refuse as a wrong password (`false` then).
    pub fn credential(&self, user: &str) -> Option<(&Credential, bool)> {
        self.users
            .iter()
            .rev()
            .find(|(name, _)| name == user)
            .map(|(_, c)| (c, true))
            .or_else(|| self.users.first().map(|(_, c)| (c, false)))
    }
}

/// A password hash in one of the htpasswd formats Traefik accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `$2a$`, `$2b$`, `$2x$`, `$2y$`.
    Bcrypt(String),
    /// `{SHA}` and the base64 SHA-1 digest.
    Sha1(Vec<u8>),
    /// `$apr1$` (Apache) or `$1$` (crypt) MD5, with the magic, the salt and the hash.
    Md5Crypt {
        magic: &'static str,
        salt: String,
        hash: String,
    },
}

/// Why an htpasswd hash was refused (it never contains the hash itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    UnknownFormat,
    Malformed(&'static str),
}

impl std::fmt::Display for CredentialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialError::UnknownFormat => {
                f.write_str("the hash is in no supported format (bcrypt, {SHA}, $apr1$ or $1$ MD5)")
            }
            CredentialError::Malformed(what) => write!(f, "the hash is malformed: {what}"),
        }
    }
}

impl Credential {
    /// The `{SHA}` credential of a password given in clear (a `kubernetes.io/basic-auth`
    /// Secret's), as Traefik derives it.
    pub fn sha1_of(password: &[u8]) -> Self {
        Credential::Sha1(Sha1::digest(password).to_vec())
    }

    /// Parses an htpasswd hash.
    pub fn parse(hash: &str) -> Result<Self, CredentialError> {
        if let Some(digest) = hash.strip_prefix("{SHA}") {
            let digest = base64::engine::general_purpose::STANDARD
                .decode(digest)
                .map_err(|_| CredentialError::Malformed("{SHA} digest is not base64"))?;
            if digest.len() != 20 {
                return Err(CredentialError::Malformed("{SHA} digest is not 20 bytes"));
            }
            return Ok(Credential::Sha1(digest));
        }
        for magic in ["$apr1$", "$1$"] {
            if let Some(rest) = hash.strip_prefix(magic) {
                let (salt, hash) = rest
                    .split_once('$')
                    .ok_or(CredentialError::Malformed("MD5 hash has no salt"))?;
                if salt.len() > 8 || hash.len() != 22 {
                    return Err(CredentialError::Malformed(
                        "MD5 salt or hash has a wrong length",
                    ));
                }
                return Ok(Credential::Md5Crypt {
                    magic,
                    salt: salt.to_owned(),
                    hash: hash.to_owned(),
                });
            }
        }
        if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| hash.starts_with(p))
        {
            // Checked here so a bad line is a configuration error, not a refused login.
            hash.parse::<bcrypt::HashParts>()
                .map_err(|_| CredentialError::Malformed("bcrypt hash does not parse"))?;
            return Ok(Credential::Bcrypt(hash.to_owned()));
        }
        Err(CredentialError::UnknownFormat)
    }

    /// Whether verifying costs enough (bcrypt) to be kept off the request threads.
    pub fn is_slow(&self) -> bool {
        matches!(self, Credential::Bcrypt(_))
    }

    /// Whether `password` matches, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Credential::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Credential::Sha1(digest) => Sha1::digest(password).as_slice().ct_eq(digest).into(),
            Credential::Md5Crypt { magic, salt, hash } => {
                md5_crypt(password, salt.as_bytes(), magic)
                    .as_bytes()
                    .ct_eq(hash.as_bytes())
                    .into()
            }
        }
    }
}

/// The MD5-based crypt of FreeBSD (`$1$`), which Apache reuses with its own magic
/// (`$apr1$`): the encoded hash, without magic and salt.
///
/// Written here because no maintained crate implements it; it follows the published
/// algorithm (1000 rounds of MD5 over password, salt and the previous digest) and is
/// checked against the vectors in Apache's password-format documentation.
fn md5_crypt(password: &[u8], salt: &[u8], magic: &str) -> String {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Md5::new()
        .chain_update(password)
        .chain_update(magic.as_bytes())
        .chain_update(salt);
    for chunk in (0..password.len()).step_by(16) {
        context.update(&alternate[..(password.len() - chunk).min(16)]);
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = context.finalize();
    for round in 0..1000 {
        let mut context = Md5::new();
        if round & 1 == 1 {
            context.update(password);
        } else {
            context.update(digest);
        }
        if round % 3 != 0 {
            context.update(salt);
        }
        if round % 7 != 0 {
            context.update(password);
        }
        if round & 1 == 1 {
            context.update(digest);
        } else {
            context.update(password);
        }
        digest = context.finalize();
    }
    const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(22);
    let mut encode = |value: u32, chars: usize| {
        let mut value = value;
        for _ in 0..chars {
            out.push(char::from(ALPHABET[(value & 0x3f) as usize]));
            value >>= 6;
        }
    };
    let d = |i: usize| u32::from(digest[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        encode((d(a) << 16) | (d(b) << 8) | d(c), 4);
    }
    encode(d(11), 2);
    out
}

/// HTTP digest authentication (RFC 7616, MD5 with `qop=auth`) against htdigest users
/// (Traefik `digestAuth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAuth {
    pub origin: Origin,
    pub realm: String,
    /// `HA1`, MD5 of `user:realm:password` in lower-case hex, of each user of `realm`; a
    /// later line for the same user replaces an earlier one.
    pub users: Vec<(String, String)>,
    pub remove_header: bool,
    /// Header that carries the authenticated user upstream.
    pub header_field: Option<HeaderName>,
}

impl DigestAuth {
    /// The `HA1` of `user`, or, for an unknown user, a placeholder, so an unknown user
    /// costs the same time to refuse as a wrong password (`false` then).
    pub fn ha1(&self, user: &str) -> (&str, bool) {
        const UNKNOWN: &str = "00000000000000000000000000000000";
        self.users
            .iter()
            .rev()
            .find(|(name, _)| name == user)
            .map_or((UNKNOWN, false), |(_, ha1)| (ha1.as_str(), true))
    }
}

/// What a client's digest `Authorization` says, as received.
#[derive(Debug, Clone, Copy)]
pub struct DigestResponse<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    pub nc: &'a str,
    pub cnonce: &'a str,
    pub qop: &'a str,
    /// `KD(HA1, nonce:nc:cnonce:qop:HA2)` in hex, the client's proof.
    pub response: &'a str,
}

impl DigestResponse<'_> {
    /// Whether the proof matches `ha1` (RFC 7616 section 3.4.1, MD5, `qop=auth`),
    /// compared in constant time.
    pub fn matches(&self, ha1: &str) -> bool {
        let ha2 = md5_hex(&[self.method, ":", self.uri]);
        let expected = md5_hex(&[
            ha1,
            ":",
            self.nonce,
            ":",
            self.nc,
            ":",
            self.cnonce,
            ":",
            self.qop,
            ":",
            &ha2,
        ]);
        expected
            .as_bytes()
            .ct_eq(self.response.to_ascii_lowercase().as_bytes())
            .into()
    }
}

/// MD5 of the concatenated `parts`, in lower-case hex.
pub fn md5_hex(parts: &[&str]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part.as_bytes());
    }
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One htdigest line, `user:realm:hash`: the user, the realm and the hash in lower case,
/// or why it is refused (never repeating the hash).
pub fn parse_htdigest(line: &str) -> Result<(&str, &str, String), &'static str> {
    let mut parts = line.split(':');
    let (Some(user), Some(realm), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected user:realm:hash");
    };
    if hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the hash is not 32 hexadecimal digits (MD5 of user:realm:password)");
    }
    Ok((user, realm, hash.to_ascii_lowercase()))
}

/// Traefik `forwardAuth`, validated: each request is first sent (as a GET, without body)
/// to `address`; a 2xx answer lets it through, any other is the client's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardAuth {
    pub origin: Origin,
    /// An `http` or `https` URL.
    pub address: http::Uri,
    /// Set for an `https` address: the CA, client certificate and verification of its
    /// `tls` (the defaults without one); the server is verified as the address's host.
    pub tls: Option<std::sync::Arc<crate::ClientTls>>,
    /// Keep the client's `X-Forwarded-*` rather than set them.
    pub trust_forward_header: bool,
    /// Copied from a 2xx answer onto the upstream request (and removed from it first).
    pub response_headers: Vec<HeaderName>,
    pub response_headers_regex: Option<super::Pattern>,
    /// Sent to the server; empty: all the client's headers.
    pub request_headers: Vec<HeaderName>,
}
