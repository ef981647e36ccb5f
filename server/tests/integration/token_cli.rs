//! `token` commands of the real binary, as an operator runs them: limits at
//! creation and in `token list`, the token id on every write in the log, and
//! — run as root — no following of links the service's user could plant in
//! its state directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

use crate::binary::{Env, sigterm, upload, wait};
use crate::support::{json_of, sha256_hex};

#[test]
fn token_create_takes_limits_and_list_shows_them() {
    let env = Env::new();
    let out = env.run(&[
        "token",
        "create",
        "--name",
        "laptop",
        "--scope",
        "upload",
        "--client",
        "laptop",
        "--max-bytes",
        "1GiB",
        "--rate",
        "30",
    ]);
    assert!(out.status.success(), "{out:?}");
    let listing = String::from_utf8_lossy(&env.run(&["token", "list"]).stdout).into_owned();
    assert!(
        listing.contains("client=laptop, 0 B of 1.0 GiB, 30/min"),
        "{listing}"
    );
    for (args, want) in [
        (&["--client", "bad client"][..], "--client"),
        (&["--rate", "0"][..], "--rate must be greater than 0"),
        (&["--max-bytes", "lots"][..], "--max-bytes"),
    ] {
        let mut all = vec!["token", "create", "--name", "x", "--scope", "upload"];
        all.extend_from_slice(args);
        let out = env.run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{args:?}: {stderr}"
        );
    }
}

#[actix_web::test]
async fn every_write_logs_its_token_id_and_never_the_secret() {
    let env = Env::new();
    let log_path = env.dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (child, _socket, _) = env.serve_with_stderr(&[], Stdio::from(log)).await;
    let body: &'static [u8] = b"logged by token id";
    upload(&env, "logged.txt", body).await;
    let sha = sha256_hex(body);
    let res = env
        .client()
        .post(env.url(&format!("/v1/assets/{sha}/sightings")))
        .send_json(&serde_json::json!({ "path": "elsewhere/logged.txt", "name": "logged.txt" }))
        .await
        .expect("sighting");
    assert_eq!(json_of(res).await.0, 200);
    let res = env
        .client()
        .delete(env.url(&format!("/v1/assets/{sha}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(res.status().as_u16(), 204);
    sigterm(&child);
    assert!(wait(child).success());
    let log = std::fs::read_to_string(&log_path).expect("read log");
    let id = env.token.split('_').nth(1).expect("id");
    let secret = env.token.rsplit('_').next().expect("secret");
    for what in ["upload", "sighting", "deleted"] {
        assert!(
            log.lines()
                .any(|l| l.contains(what) && l.contains(&sha) && l.contains(id)),
            "a {what} line with token id {id}:\n{log}"
        );
    }
    assert!(!log.contains(secret), "the secret is in the log");
}

/// As root, on a state directory owned by `nobody` (as systemd's
/// DynamicUser leaves it): the index files end up that user's, and a link
/// planted where SQLite opens its WAL is refused and neither followed nor
/// chowned through (the old code chowned root's file to `nobody`).
#[test]
fn root_token_commands_give_files_back_and_follow_no_planted_link() {
    if !rustix::process::geteuid().is_root() {
        panic!("this test needs root, as CI runs it (chown to another user)");
    }
    let env = Env::new();
    let nobody = 65534;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the temp dir to nobody");
    chown_tree(&env.state(), nobody);
    let out = env.run(&["token", "create", "--name", "as-root", "--scope", "read"]);
    assert!(out.status.success(), "{out:?}");
    for entry in std::fs::read_dir(env.state()).expect("state") {
        let meta = entry.expect("entry").metadata().expect("meta");
        assert_eq!(meta.uid(), nobody, "every index file stays the service's");
    }

    let victim = env.dir.path().join("victim");
    let original = "root's file\n".repeat(700).into_bytes();
    std::fs::write(&victim, &original).expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let wal = env.state().join("index.sqlite3-wal");
    let _ = std::fs::remove_file(&wal);
    std::os::unix::fs::symlink(&victim, &wal).expect("plant a link");
    rustix::fs::chownat(
        rustix::fs::CWD,
        &wal,
        Some(rustix::fs::Uid::from_raw(nobody)),
        Some(rustix::fs::Gid::from_raw(nobody)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("the link is nobody's");
    let out = env.run(&["token", "create", "--name", "tricked", "--scope", "admin"]);
    let meta = std::fs::metadata(&victim).expect("victim");
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (0, 0o600),
        "root's file keeps its owner and mode ({out:?})"
    );
    assert_eq!(std::fs::read(&victim).expect("read"), original);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("index"),
        "a failure names the index: {stderr}"
    );
}

fn chown_tree(path: &std::path::Path, uid: u32) {
    let id = Some(rustix::fs::Uid::from_raw(uid));
    let gid = Some(rustix::fs::Gid::from_raw(uid));
    rustix::fs::chown(path, id, gid).expect("chown");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            chown_tree(&entry.expect("entry").path(), uid);
        }
    }
}
