//! Secrets and safety: a key only ever travels over HTTPS (or to a loopback address),
//! and the OAuth redirect listener only listens on loopback and gives up in time.

use serde_json::{Value, json};
use source_stripe::emulator::{DEFAULT_TEST_KEY, OAUTH_CLIENT_ID_TEST};
use tokio::io::AsyncBufReadExt;

use crate::util::{Files, assert_no_secrets, path, run, start_emulator};

/// `api_base` with plain `http://` to a host that is not loopback is a config_error
/// naming `api_base`, in every command that reads the config, before any request.
#[tokio::test]
async fn plain_http_api_base_elsewhere_is_refused() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let catalog = files.catalog(&[("customers", "full_refresh")]);
    for base in [
        "http://192.0.2.10:12111",
        "http://api.stripe.com",
        "http://[2001:db8::1]:80",
    ] {
        let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"api_base": base}));
        for args in [
            vec!["check", "--config", path(&config)],
            vec!["discover", "--config", path(&config)],
            vec![
                "read",
                "--config",
                path(&config),
                "--catalog",
                path(&catalog),
            ],
        ] {
            let out = run(&args).await;
            let message = if args[0] == "check" {
                // check answers as Airbyte's CDK does: a FAILED status, exit 0.
                assert_eq!(out.code, 0, "{base} {args:?}");
                let status = &out.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
                assert_eq!(status["status"], "FAILED", "{status}");
                status["message"].as_str().unwrap().to_owned()
            } else {
                assert_ne!(out.code, 0, "{base} {args:?}");
                let errors = out.errors();
                let error = errors
                    .last()
                    .unwrap_or_else(|| panic!("a TRACE error: {out:?}"));
                assert_eq!(error["failure_type"], "config_error", "{error}");
                error["message"].as_str().unwrap().to_owned()
            };
            assert!(
                message.contains("`api_base`") && message.contains("https://"),
                "{message}"
            );
        }
    }
    assert_eq!(
        emulator.emulator().request_log().len(),
        0,
        "nothing was sent anywhere"
    );
    // Loopback by name is the emulator too.
    let local = emulator.base_url().replace("127.0.0.1", "localhost");
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({"api_base": local}));
    let out = run(&["check", "--config", path(&config)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// The OAuth commands send the platform's secret key too: `--oauth-base` with plain
/// http to another host is refused before anything is sent.
#[tokio::test]
async fn plain_http_oauth_base_elsewhere_is_refused() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let output = tokio::process::Command::new(crate::util::BIN)
        .args(["connect", "exchange", "--config", path(&config)])
        .args([
            "--code",
            "ac_123456789",
            "--oauth-base",
            "http://192.0.2.10",
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_no_secrets(&stderr);
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr.contains("--oauth-base") && stderr.contains("https://"),
        "{stderr}"
    );
}

/// The local address of the listening TCP socket on `port`, from /proc/net/tcp{,6}.
fn listening_addresses(port: u16) -> Vec<String> {
    let port_hex = format!("{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    // cols[1] = local "ADDR:PORT", cols[3] = state, 0A = LISTEN.
                    let (addr, p) = cols.get(1)?.split_once(':')?;
                    (p == port_hex && cols.get(3) == Some(&"0A")).then(|| addr.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `connect listen` binds 127.0.0.1 only (never 0.0.0.0), and when no redirect comes
/// it gives up after `--timeout-secs`, saying so, with a non-zero exit.
#[tokio::test(flavor = "multi_thread")]
async fn connect_listen_is_loopback_only_and_times_out() {
    let emulator = start_emulator(10).await;
    let files = Files::new();
    let config = files.config(&emulator, DEFAULT_TEST_KEY, json!({}));
    let mut child = tokio::process::Command::new(crate::util::BIN)
        .args(["connect", "listen", "--config", path(&config)])
        .args(["--client-id", OAUTH_CLIENT_ID_TEST, "--timeout-secs", "2"])
        .args(["--oauth-base", &emulator.base_url()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let url = url::Url::parse(first["authorize_url"].as_str().unwrap()).unwrap();
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| url::Url::parse(&v).unwrap())
        .unwrap();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    let port = redirect.port().unwrap();
    // 0100007F is 127.0.0.1 in /proc's little-endian hex.
    assert_eq!(listening_addresses(port), vec!["0100007F".to_owned()]);
    // A connection that never sends a request does not keep it alive past the timeout.
    let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_no_secrets(&stderr);
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr.contains("no redirect") && stderr.contains("--timeout-secs"),
        "{stderr}"
    );
}
