//! Background jobs against a real server and real files: images made here
//! in every format the thumbnailer reads (one with EXIF written here, one
//! real PNG from Debian's debconf), a WAV, a text file, a decompression
//! bomb and a truncated JPEG; then scrub on objects changed and removed
//! behind the server's back, in the file store and in Garage, through the
//! jobs and through `scrub --now`.

use std::io::Cursor;
use std::process::Command;
use std::time::Duration;

use asset_catalog_proto::ErrorCode;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use object_store::ObjectStoreExt;
use serde_json::Value;

use crate::support::{Kind, TestServer, assert_error, json_of, sha256_hex};

const BIN: &str = env!("CARGO_BIN_EXE_asset-catalog-server");
/// A real PNG (48 x 48, RGBA) from Debian's debconf, installed everywhere.
const DEBIAN_LOGO: &str = "/usr/share/pixmaps/debian-logo.png";

fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
    })
}

/// A JPEG whose EXIF says: Canon EOS 5D, taken 2024-05-06 07:08:09,
/// orientation 6 (the camera was turned: display rotated 90° clockwise).
pub(crate) fn photo_with_exif() -> Vec<u8> {
    let jpeg = encode(
        DynamicImage::ImageRgb8(gradient(320, 200)),
        ImageFormat::Jpeg,
    );
    let mut tiff: Vec<u8> = b"II*\0\x08\0\0\0".to_vec();
    let entry = |tag: u16, typ: u16, count: u32, value: u32| {
        let mut e = Vec::new();
        e.extend(tag.to_le_bytes());
        e.extend(typ.to_le_bytes());
        e.extend(count.to_le_bytes());
        e.extend(value.to_le_bytes());
        e
    };
    // IFD0 at 8 (4 entries: ends at 62), the Exif IFD at 62 (ends at 80), data at 80.
    tiff.extend(4u16.to_le_bytes());
    tiff.extend(entry(0x010f, 2, 6, 80)); // Make "Canon\0"
    tiff.extend(entry(0x0110, 2, 7, 86)); // Model "EOS 5D\0"
    tiff.extend(entry(0x0112, 3, 1, 6)); // Orientation
    tiff.extend(entry(0x8769, 4, 1, 62)); // Exif IFD
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    tiff.extend(entry(0x9003, 2, 20, 93)); // DateTimeOriginal
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(b"Canon\0EOS 5D\0" as &[u8]);
    tiff.extend(b"2024:05:06 07:08:09\0" as &[u8]);
    assert_eq!(tiff.len(), 113);
    let mut app1 = vec![0xff, 0xe1];
    app1.extend(
        u16::try_from(2 + 6 + tiff.len())
            .expect("len")
            .to_be_bytes(),
    );
    app1.extend(b"Exif\0\0" as &[u8]);
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

/// A PNG whose header claims 100,000 x 100,000 pixels (40 GB decoded),
/// with a few bytes of pixel data.
fn png_bomb() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend(u32::try_from(data.len()).expect("len").to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.finalize().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// `secs` of 8 kHz mono 16-bit silence.
pub(crate) fn wav(secs: u32) -> Vec<u8> {
    let data = secs * 8000 * 2;
    let mut out = b"RIFF".to_vec();
    out.extend((36 + data).to_le_bytes());
    out.extend(b"WAVEfmt " as &[u8]);
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(8000u32.to_le_bytes());
    out.extend(16000u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data" as &[u8]);
    out.extend(data.to_le_bytes());
    out.resize(out.len() + data as usize, 0);
    out
}

/// The asset once the jobs decided about its thumbnail.
pub(crate) async fn settled(server: &TestServer, sha: &str) -> Value {
    for _ in 0..600 {
        let (status, json) = server.get_json(&format!("/v1/assets/{sha}")).await;
        assert_eq!(status, 200, "{json}");
        if json.get("thumbnail").is_some() {
            return json;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the jobs never finished with {sha}");
}

async fn thumbnail(server: &TestServer, sha: &str, size: u32) -> (u16, Vec<u8>, Option<String>) {
    let mut res = server
        .client()
        .get(server.url(&format!("/v1/assets/{sha}/thumbnail?size={size}")))
        .send()
        .await
        .expect("GET thumbnail");
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.body().limit(16 << 20).await.expect("body");
    (res.status().as_u16(), body.to_vec(), etag)
}

/// The server's configuration as a file for the command-line tools.
fn config_file(server: &TestServer) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("config file");
    std::fs::write(file.path(), toml::to_string(server.config()).expect("toml")).expect("write");
    file
}

fn cli(config: &tempfile::NamedTempFile, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config.path())
        .args(args)
        .output()
        .expect("run the binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn fast_jobs(config: &mut asset_catalog_server::Config) {
    config.jobs.scrub_bytes_per_sec = 0;
    config.jobs.lease_secs = 4;
}

pub async fn metadata_and_thumbnails_from_real_files() {
    let server = TestServer::start_with(Kind::File, fast_jobs).await;
    let rgba = RgbaImage::from_fn(300, 150, |x, _| Rgba([200, 30, 30, (x % 256) as u8]));
    let logo = std::fs::read(DEBIAN_LOGO).expect("debconf's logo (Debian package debconf)");
    let photo = photo_with_exif();
    let mut truncated = encode(
        DynamicImage::ImageRgb8(gradient(800, 600)),
        ImageFormat::Jpeg,
    );
    truncated.truncate(truncated.len() / 2);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("photo.jpg", photo.clone()),
        (
            "alpha.png",
            encode(DynamicImage::ImageRgba8(rgba), ImageFormat::Png),
        ),
        (
            "anim.gif",
            encode(DynamicImage::ImageRgb8(gradient(64, 48)), ImageFormat::Gif),
        ),
        (
            "pic.webp",
            encode(DynamicImage::ImageRgb8(gradient(90, 60)), ImageFormat::WebP),
        ),
        ("debian-logo.png", logo),
        ("tone.wav", wav(3)),
        ("notes.txt", b"nothing to see here\n".to_vec()),
        // Named .jpg: the type comes from the bytes, never from the name.
        ("bomb.jpg", png_bomb()),
        ("cut.jpg", truncated),
    ];
    let mut asset = std::collections::HashMap::new();
    for (name, bytes) in &files {
        server.upload(name, bytes).await;
        asset.insert(*name, sha256_hex(bytes));
    }
    let mut seen = std::collections::HashMap::new();
    for (name, sha) in &asset {
        seen.insert(*name, settled(&server, sha).await);
    }
    let photo_json = &seen["photo.jpg"];
    let media = &photo_json["media"];
    assert_eq!(media["kind"], "image", "{photo_json}");
    assert_eq!(media["type"], "image/jpeg");
    assert_eq!(
        (media["width"].as_u64(), media["height"].as_u64()),
        (Some(320), Some(200))
    );
    assert_eq!(media["camera_make"], "Canon");
    assert_eq!(media["camera_model"], "EOS 5D");
    assert_eq!(media["orientation"], 6);
    assert_eq!(media["taken_at"], "2024-05-06T07:08:09Z");
    assert!(media.get("gps").is_none());
    assert_eq!(photo_json["thumbnail"], true);
    assert_eq!(photo_json["integrity"], "ok", "an upload is verified");

    // The thumbnail has the orientation applied: 320 x 200 turned is 200 x 320.
    let sha = &asset["photo.jpg"];
    let (status, body, etag) = thumbnail(&server, sha, 256).await;
    assert_eq!(status, 200);
    let thumb = image::load_from_memory(&body).expect("a thumbnail decodes");
    assert_eq!((thumb.width(), thumb.height()), (160, 256));
    let etag = etag.expect("etag");
    let res = server
        .client()
        .get(server.url(&format!("/v1/assets/{sha}/thumbnail")))
        .insert_header(("If-None-Match", etag.as_str()))
        .send()
        .await
        .expect("conditional GET");
    assert_eq!(res.status().as_u16(), 304);
    let (status, body, _) = thumbnail(&server, sha, 1024).await;
    assert_eq!(status, 200);
    let large = image::load_from_memory(&body).expect("decodes");
    assert_eq!(
        (large.width(), large.height()),
        (200, 320),
        "never upscaled"
    );

    // Transparency keeps a PNG; every format the thumbnailer reads has one.
    let (status, body, _) = thumbnail(&server, &asset["alpha.png"], 256).await;
    assert_eq!(status, 200);
    assert_eq!(
        image::guess_format(&body).expect("format"),
        ImageFormat::Png
    );
    for name in ["anim.gif", "pic.webp", "debian-logo.png"] {
        assert_eq!(seen[name]["thumbnail"], true, "{name}: {}", seen[name]);
        let (status, _, _) = thumbnail(&server, &asset[name], 256).await;
        assert_eq!(status, 200, "{name}");
    }
    assert_eq!(seen["debian-logo.png"]["media"]["width"], 48);

    let wav_json = &seen["tone.wav"];
    assert_eq!(wav_json["media"]["kind"], "audio", "{wav_json}");
    let secs = wav_json["media"]["duration_secs"]
        .as_f64()
        .expect("duration");
    assert!((secs - 3.0).abs() < 0.01, "{secs}");
    assert_eq!(seen["notes.txt"]["media"]["kind"], "document");
    for name in ["tone.wav", "notes.txt", "bomb.jpg", "cut.jpg"] {
        assert_eq!(seen[name]["thumbnail"], false, "{name}: {}", seen[name]);
        let (status, body, _) = thumbnail(&server, &asset[name], 256).await;
        let json: Value = serde_json::from_slice(&body).expect("json error");
        assert_error(status, &json, 404, ErrorCode::NoThumbnail);
    }
    assert_eq!(
        seen["bomb.jpg"]["media"]["type"], "image/png",
        "sniffed, not the name"
    );
    let res = server
        .client()
        .get(server.url(&format!(
            "/v1/assets/{}/thumbnail?size=77",
            asset["photo.jpg"]
        )))
        .send()
        .await
        .expect("GET");
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);

    // The filters.
    let listed = |query: &'static str| {
        let server = &server;
        async move {
            let (status, page) = server.get_json(&format!("/v1/assets?{query}")).await;
            assert_eq!(status, 200, "{page}");
            let mut names: Vec<String> = page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|a| a["name"].as_str().expect("name").to_owned())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(listed("kind=audio").await, ["tone.wav"]);
    assert_eq!(listed("kind=image").await.len(), 7);
    assert_eq!(
        listed("taken_since=2024-05-06T00:00:00Z&taken_until=2024-05-07T00:00:00Z").await,
        ["photo.jpg"]
    );
    assert!(listed("taken_since=2024-05-07T00:00:00Z").await.is_empty());
    let (status, json) = server.get_json("/v1/assets?kind=picture").await;
    assert_error(status, &json, 400, ErrorCode::BadRequest);

    // The bomb and the cut JPEG failed cleanly, with their reasons.
    let config = config_file(&server);
    let (code, failed) = cli(&config, &["jobs", "failed"]);
    assert_eq!(code, 0, "{failed}");
    assert!(
        failed.contains(&asset["bomb.jpg"]) && failed.contains(&asset["cut.jpg"]),
        "{failed}"
    );
    assert!(failed.contains("thumbnail"), "{failed}");
    let (code, status) = cli(&config, &["jobs", "status"]);
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("thumbnail") && status.contains("failed"),
        "{status}"
    );
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains(
            "asset_catalog_job_duration_seconds_count{kind=\"thumbnail\",outcome=\"failed\"} 2"
        ),
        "{metrics}"
    );

    // Deleting an asset removes its thumbnails.
    let thumbs = |server: &TestServer| {
        server
            .files_on_disk()
            .into_iter()
            .filter(|f| f.contains("thumbnails/") && f.contains(&asset["photo.jpg"]))
            .count()
    };
    assert_eq!(thumbs(&server), 2);
    assert_eq!(server.delete(&asset["photo.jpg"]).await.0, 204);
    assert_eq!(thumbs(&server), 0);
    server.stop().await;
}

/// Change one object's bytes and remove another behind the server's back;
/// the scrub jobs (queued with `scrub SHA…`) and `scrub --now` find both,
/// mark them, count them once, and delete nothing.
pub async fn scrub_finds_corrupt_and_missing_objects(kind: Kind) {
    let server = TestServer::start_with(kind, fast_jobs).await;
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|i| format!("scrub me {i}\n").repeat(1000).into_bytes())
        .collect();
    let mut keys = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let json = server.upload(&format!("s{i}.txt"), body).await;
        keys.push(json["asset"]["key"].as_str().expect("key").to_owned());
    }
    let shas: Vec<String> = bodies.iter().map(|b| sha256_hex(b)).collect();
    let store = server.store.clone();
    let path = |k: &str| object_store::path::Path::from(k);
    store
        .put(&path(&keys[0]), b"flipped bits".to_vec().into())
        .await
        .expect("corrupt");
    store.delete(&path(&keys[1])).await.expect("remove");
    let config = config_file(&server);
    let (code, out) = cli(&config, &["scrub", &shas[0], &shas[1], &shas[2]]);
    assert_eq!(code, 0, "{out}");
    let integrity = |sha: String| {
        let server = &server;
        async move {
            for _ in 0..300 {
                let (_, json) = server.get_json(&format!("/v1/assets/{sha}")).await;
                if json["integrity"] != "ok" || json["verified_at"] != json["first_seen"] {
                    return json;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("never scrubbed: {sha}");
        }
    };
    let corrupt = integrity(shas[0].clone()).await;
    assert_eq!(corrupt["integrity"], "corrupt", "{corrupt}");
    let missing = integrity(shas[1].clone()).await;
    assert_eq!(missing["integrity"], "missing", "{missing}");
    let whole = integrity(shas[2].clone()).await;
    assert_eq!(whole["integrity"], "ok", "{whole}");
    let (_, page) = server.get_json("/v1/assets?integrity=problem").await;
    let mut found: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["name"].as_str().expect("name"))
        .collect();
    found.sort_unstable();
    assert_eq!(found, ["s0.txt", "s1.txt"]);
    let metrics = server.metrics_text().await;
    for found in ["corrupt", "missing"] {
        assert!(
            metrics.contains(&format!(
                "asset_catalog_scrub_problems_total{{found=\"{found}\"}} 1"
            )),
            "{metrics}"
        );
    }
    // Nothing was deleted: the corrupt bytes are still there for a person.
    assert!(store.head(&path(&keys[0])).await.is_ok());

    // The operator's command: every asset, here and now.
    let (code, out) = cli(&config, &["scrub", "--now"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("{}  corrupt", shas[0])), "{out}");
    assert!(out.contains(&format!("{}  missing", shas[1])), "{out}");
    assert!(
        out.contains("4 checked, 2 ok, 1 corrupt, 1 missing"),
        "{out}"
    );
    let (code, out) = cli(&config, &["scrub", "--now", &shas[3]]);
    assert_eq!((code, out.contains("1 checked, 1 ok")), (0, true), "{out}");
    let (code, out) = cli(&config, &["scrub", "--now", "nothex"]);
    assert_eq!(code, 2, "{out}");
    server.stop().await;
}

/// `[jobs] enabled = false`: nothing runs, the jobs wait in the queue.
pub async fn jobs_can_be_turned_off() {
    let server = TestServer::start_with(Kind::Memory, |c| c.jobs.enabled = false).await;
    let png = encode(DynamicImage::ImageRgb8(gradient(40, 30)), ImageFormat::Png);
    let json = server.upload("a.png", &png).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sha = json["asset"]["sha256"].as_str().expect("sha");
    let (_, asset) = server.get_json(&format!("/v1/assets/{sha}")).await;
    assert!(
        asset.get("media").is_none() && asset.get("thumbnail").is_none(),
        "{asset}"
    );
    server.stop().await;
}

/// Jobs take what uploads leave: while uploads keep arriving, each lane
/// starts a job only every `[jobs] yield_to_uploads_secs`; once they stop,
/// the rest runs after a second of quiet.
pub async fn jobs_yield_to_uploads() {
    let server = TestServer::start_with(Kind::Memory, |c| {
        fast_jobs(c);
        c.jobs.yield_to_uploads_secs = 4;
    })
    .await;
    let started = std::time::Instant::now();
    let mut hashes = Vec::new();
    let mut n = 0u32;
    // Small uploads back to back for 12 s (never a second of quiet), with
    // four images among the first ones: 4 metadata and 4 thumbnail jobs.
    while started.elapsed() < Duration::from_secs(12) {
        if n % 5 == 0 && hashes.len() < 4 {
            let png = encode(
                DynamicImage::ImageRgb8(gradient(40 + n, 30)),
                ImageFormat::Png,
            );
            server.upload(&format!("i{n}.png"), &png).await;
            hashes.push(sha256_hex(&png));
        }
        server
            .upload(&format!("n{n}.txt"), format!("busy {n}\n").as_bytes())
            .await;
        n += 1;
    }
    let done = |metrics: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("asset_catalog_job_duration_seconds_count{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let during = done(&server.metrics_text().await);
    // One lane, one job per 4 s at most: the 12 s allow 4 (one at the start).
    assert!(during <= 4, "{during} jobs ran while uploads never paused");
    for sha in &hashes {
        assert_eq!(settled(&server, sha).await["thumbnail"], true);
    }
    eprintln!("{n} uploads in 12 s; {during} jobs ran meanwhile");
    server.stop().await;
}
