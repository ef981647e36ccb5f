//! The client id a watcher names itself by (`x-asset-client`): the
//! server's rule for a valid one, and the default made from the host and
//! user names.

/// `[A-Za-z0-9._-]{1,64}`, the server's rule for `x-asset-client`.
pub fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `<hostname>-<user>`, with anything outside `[A-Za-z0-9._-]` replaced by `-`.
pub fn default_client_id(user: Option<&str>) -> String {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let user = user
        .map(str::to_owned)
        .unwrap_or_else(|| format!("uid{}", rustix::process::getuid().as_raw()));
    sanitize_client_id(&format!("{host}-{user}"))
}

fn sanitize_client_id(raw: &str) -> String {
    let mut id: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() {
        id.push_str("asset-watcher");
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_sanitised() {
        assert_eq!(sanitize_client_id("my host-bob@x"), "my-host-bob-x");
        assert!(valid_client_id(&sanitize_client_id(&"x".repeat(100))));
        assert!(!valid_client_id(""));
    }
}
