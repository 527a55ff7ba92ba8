//! The forward protocol's handshake: a shared key, and optionally a user
//! and password, proven by digests (the key and passwords never cross the
//! wire).
//!
//! ```text
//! server → HELO ["HELO", {"nonce": bin, "auth": bin (user salt, or ""), "keepalive": true}]
//! client → PING ["PING", hostname, salt, hex(sha512(salt + hostname + nonce + key)),
//!                username, hex(sha512(auth + username + password))]
//! server → PONG ["PONG", ok, reason, hostname, hex(sha512(salt + hostname + nonce + key))]
//! ```
//!
//! The server proves it knows the key too (PONG's digest, with its own host
//! name), so the client checks it. The digests are compared in constant
//! time. Nothing here encrypts: without TLS, the records themselves cross
//! the wire in clear.

use sha2::{Digest, Sha512};

use crate::config::forward::{ForwardClientAuth, ForwardServerAuth};
use crate::scan::msgpack::{Token, token, walk};

/// Random bytes for a nonce or a salt.
fn random16() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    // A failing system random source leaves zeros: the handshake still
    // proves the key, only replays become possible.
    let _ = getrandom::fill(&mut bytes);
    bytes
}

/// `hex(sha512(parts…))`.
fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether two digests are equal, in time that does not depend on where
/// they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The elements of a msgpack array (each as the bytes it takes), if `value`
/// is one.
fn elements(value: &[u8]) -> Option<Vec<&[u8]>> {
    let (Token::Container(n), mut at) = token(value, 0).ok()? else {
        return None;
    };
    if !matches!(value[0], 0x90..=0x9f | 0xdc | 0xdd) {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let len = walk(&value[at..], 1, |_, _, _, _| {}).ok()?;
        out.push(&value[at..at + len]);
        at += len;
    }
    Some(out)
}

/// The payload of a `str` or `bin` value.
fn bytes(value: &[u8]) -> Option<&[u8]> {
    match token(value, 0).ok()? {
        (Token::Payload { body, .. }, end) => Some(&value[body..end]),
        _ => None,
    }
}

fn write_str(out: &mut Vec<u8>, text: &[u8]) {
    let _ = rmp::encode::write_str_len(out, text.len() as u32);
    out.extend_from_slice(text);
}

fn write_bin(out: &mut Vec<u8>, data: &[u8]) {
    let _ = rmp::encode::write_bin_len(out, data.len() as u32);
    out.extend_from_slice(data);
}

/// The server's side of one connection's handshake.
pub(crate) struct ServerHandshake<'a> {
    auth: &'a ForwardServerAuth,
    nonce: [u8; 16],
    /// The salt of user authentication (empty without users).
    user_salt: Vec<u8>,
}

impl<'a> ServerHandshake<'a> {
    /// A handshake with fresh random nonce and salt.
    pub(crate) fn new(auth: &'a ForwardServerAuth) -> ServerHandshake<'a> {
        let user_salt = if auth.users.is_empty() {
            Vec::new()
        } else {
            random16().to_vec()
        };
        ServerHandshake {
            auth,
            nonce: random16(),
            user_salt,
        }
    }

    /// The HELO to send first.
    pub(crate) fn helo(&self) -> Vec<u8> {
        let mut out = vec![0x92];
        write_str(&mut out, b"HELO");
        out.push(0x83);
        write_str(&mut out, b"nonce");
        write_bin(&mut out, &self.nonce);
        write_str(&mut out, b"auth");
        write_bin(&mut out, &self.user_salt);
        write_str(&mut out, b"keepalive");
        out.push(0xc3);
        out
    }

    /// Checks the client's PING: the PONG to send, and whether the client
    /// is let in (`Err` names why not, for the log and the PONG).
    pub(crate) fn answer(&self, ping: &[u8]) -> (Vec<u8>, Result<(), &'static str>) {
        let verdict = self.check(ping);
        let salt = elements(ping)
            .and_then(|e| e.get(2).copied())
            .and_then(bytes)
            .unwrap_or_default();
        let hostname = self.auth.self_hostname.as_bytes();
        let mut out = vec![0x95];
        write_str(&mut out, b"PONG");
        out.push(if verdict.is_ok() { 0xc3 } else { 0xc2 });
        write_str(&mut out, verdict.err().unwrap_or("").as_bytes());
        write_str(&mut out, hostname);
        let proof = match verdict {
            Ok(()) => digest(&[salt, hostname, &self.nonce, self.auth.shared_key.expose()]),
            Err(_) => String::new(),
        };
        write_str(&mut out, proof.as_bytes());
        (out, verdict)
    }

    fn check(&self, ping: &[u8]) -> Result<(), &'static str> {
        let fields = elements(ping).ok_or("the handshake expected a PING")?;
        let field = |i: usize| fields.get(i).copied().and_then(bytes);
        if fields.len() != 6 || field(0) != Some(b"PING") {
            return Err("the handshake expected a PING");
        }
        let (Some(hostname), Some(salt), Some(key_digest), Some(user), Some(password_digest)) =
            (field(1), field(2), field(3), field(4), field(5))
        else {
            return Err("malformed PING");
        };
        let expected = digest(&[salt, hostname, &self.nonce, self.auth.shared_key.expose()]);
        if !same(key_digest, expected.as_bytes()) {
            return Err("shared key mismatch");
        }
        if self.auth.users.is_empty() {
            return Ok(());
        }
        let known = self
            .auth
            .users
            .iter()
            .find(|(name, _)| name.as_bytes() == user);
        let valid = known.is_some_and(|(name, password)| {
            let expected = digest(&[&self.user_salt, name.as_bytes(), password.expose()]);
            same(password_digest, expected.as_bytes())
        });
        if valid {
            Ok(())
        } else {
            Err("username/password mismatch")
        }
    }
}

/// The client's side of a handshake, once the server's HELO is read.
pub(crate) struct ClientHandshake<'a> {
    auth: &'a ForwardClientAuth,
    nonce: Vec<u8>,
    /// The salt of user authentication the server sent (empty: none).
    user_salt: Vec<u8>,
    salt: [u8; 16],
}

impl<'a> ClientHandshake<'a> {
    /// Reads the server's HELO.
    pub(crate) fn new(
        auth: &'a ForwardClientAuth,
        helo: &[u8],
    ) -> Result<ClientHandshake<'a>, &'static str> {
        let fields = elements(helo).ok_or("the next hop sent no HELO")?;
        if fields.len() != 2 || fields.first().copied().and_then(bytes) != Some(b"HELO") {
            return Err("the next hop sent no HELO");
        }
        let options = fields[1];
        let (Token::Container(n), mut at) = token(options, 0).map_err(|_| "malformed HELO")? else {
            return Err("malformed HELO");
        };
        let (mut nonce, mut user_salt) = (None, Vec::new());
        for _ in 0..n / 2 {
            let key_len = walk(&options[at..], 1, |_, _, _, _| {}).map_err(|_| "malformed HELO")?;
            let value = &options[at + key_len..];
            let value_len = walk(value, 1, |_, _, _, _| {}).map_err(|_| "malformed HELO")?;
            match bytes(&options[at..]) {
                Some(b"nonce") => nonce = bytes(value).map(<[u8]>::to_vec),
                Some(b"auth") => user_salt = bytes(value).unwrap_or_default().to_vec(),
                _ => {}
            }
            at += key_len + value_len;
        }
        let nonce = nonce.ok_or("the HELO has no nonce")?;
        if !user_salt.is_empty() && auth.user.is_none() {
            return Err("the next hop asks for a username and password, and none is configured");
        }
        Ok(ClientHandshake {
            auth,
            nonce,
            user_salt,
            salt: random16(),
        })
    }

    /// The PING to send.
    pub(crate) fn ping(&self) -> Vec<u8> {
        let hostname = self.auth.self_hostname.as_bytes();
        let mut out = vec![0x96];
        write_str(&mut out, b"PING");
        write_str(&mut out, hostname);
        let salt = hex(&self.salt);
        write_str(&mut out, salt.as_bytes());
        let key = digest(&[
            salt.as_bytes(),
            hostname,
            &self.nonce,
            self.auth.shared_key.expose(),
        ]);
        write_str(&mut out, key.as_bytes());
        match &self.auth.user {
            Some((name, password)) => {
                write_str(&mut out, name.as_bytes());
                let proof = digest(&[&self.user_salt, name.as_bytes(), password.expose()]);
                write_str(&mut out, proof.as_bytes());
            }
            None => {
                write_str(&mut out, b"");
                write_str(&mut out, b"");
            }
        }
        out
    }

    /// Checks the server's PONG: it let logredact in, and it knows the key.
    pub(crate) fn check_pong(&self, pong: &[u8]) -> Result<(), String> {
        let fields = elements(pong).ok_or("the next hop sent no PONG")?;
        if fields.len() != 5 || fields[0..1].iter().copied().find_map(bytes) != Some(b"PONG") {
            return Err("the next hop sent no PONG".into());
        }
        if fields[1] != [0xc3] {
            let reason = bytes(fields[2]).unwrap_or_default();
            // The reason is the next hop's text: masked like any message.
            return Err(format!(
                "the next hop refused the handshake: {}",
                crate::scrub::scrub(&String::from_utf8_lossy(reason))
            ));
        }
        let (Some(hostname), Some(proof)) = (bytes(fields[3]), bytes(fields[4])) else {
            return Err("malformed PONG".into());
        };
        let salt = hex(&self.salt);
        let expected = digest(&[
            salt.as_bytes(),
            hostname,
            &self.nonce,
            self.auth.shared_key.expose(),
        ]);
        if !same(proof, expected.as_bytes()) {
            return Err("the next hop does not know the shared key".into());
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::forward::Secret;

    fn secret(text: &str) -> Secret {
        // Secrets are made by the configuration reader only; the tests
        // read one.
        let yaml = format!("forward: {{ output: {{ shared_key: '{text}' }} }}\n");
        let config = crate::config::Config::parse(&yaml, "t.yaml", None).unwrap();
        config.forward.output.unwrap().shared_key
    }

    fn server(users: &[(&str, &str)]) -> ForwardServerAuth {
        ForwardServerAuth {
            shared_key: secret("the key"),
            self_hostname: "server".into(),
            users: users
                .iter()
                .map(|(n, p)| (n.to_string(), secret(p)))
                .collect(),
        }
    }

    fn client(key: &str, user: Option<(&str, &str)>) -> ForwardClientAuth {
        ForwardClientAuth {
            shared_key: secret(key),
            self_hostname: "client".into(),
            user: user.map(|(n, p)| (n.to_string(), secret(p))),
        }
    }

    fn run(server: &ForwardServerAuth, client: &ForwardClientAuth) -> Result<(), String> {
        let handshake = ServerHandshake::new(server);
        let ours = ClientHandshake::new(client, &handshake.helo()).map_err(String::from)?;
        let (pong, verdict) = handshake.answer(&ours.ping());
        let checked = ours.check_pong(&pong);
        match verdict {
            Ok(()) => checked,
            Err(why) => {
                assert!(checked.is_err());
                Err(why.to_string())
            }
        }
    }

    #[test]
    fn the_key_and_the_user_are_proven_both_ways() {
        assert_eq!(run(&server(&[]), &client("the key", None)), Ok(()));
        assert_eq!(
            run(&server(&[]), &client("another key", None)),
            Err("shared key mismatch".into())
        );
        let with_users = server(&[("fluent", "pw")]);
        assert_eq!(
            run(&with_users, &client("the key", Some(("fluent", "pw")))),
            Ok(())
        );
        assert_eq!(
            run(&with_users, &client("the key", Some(("fluent", "wrong")))),
            Err("username/password mismatch".into())
        );
        assert_eq!(
            run(&with_users, &client("the key", None)),
            Err("the next hop asks for a username and password, and none is configured".into())
        );
        // A server that does not know the key is found out by the client:
        // a PONG that says yes with a digest of another key.
        let plain = server(&[]);
        let handshake = ServerHandshake::new(&plain);
        let us = client("the key", None);
        let ours = ClientHandshake::new(&us, &handshake.helo()).unwrap();
        let mut pong = vec![0x95];
        write_str(&mut pong, b"PONG");
        pong.push(0xc3);
        write_str(&mut pong, b"");
        write_str(&mut pong, b"server");
        let forged = digest(&[b"salt", b"server", &handshake.nonce, b"not the key"]);
        write_str(&mut pong, forged.as_bytes());
        assert_eq!(
            ours.check_pong(&pong),
            Err("the next hop does not know the shared key".into())
        );
    }
}
