//! What an operator watches logredact with, checked against a running
//! logredact: `/metrics` as promtool lints it (`promtool check metrics` on a
//! live scrape), `logredact_build_info`, the process metrics and
//! `logredact_ready`; the alert rules under `deploy/prometheus` (`promtool
//! check rules`, `promtool test rules`); the Grafana dashboard under
//! `deploy/grafana`, whose queries may name only metrics a live scrape
//! shows; and the own log's colours, which `NO_COLOR` turns off.

#[path = "../common/mod.rs"]
mod common;

mod promtool;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use common::{
    Collector, Running, TokenGen, binary, free_port, http_response_with, read, repo_path, rss_kib,
    wait_for_metric, wait_with_deadline,
};

/// A scrape of `/metrics` asking for `accept`: (content type, body).
fn scrape(admin: u16, accept: &str) -> (String, String) {
    let response = http_response_with(admin, "/metrics", &format!("Accept: {accept}\r\n"));
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (content_type, body.to_string())
}

/// The samples of a scrape: `name{labels}` to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            let value = value.parse().unwrap_or_else(|e| panic!("{l}: value: {e}"));
            (series.to_string(), value)
        })
        .collect()
}

/// The metric names of a scrape's samples.
fn sample_names(text: &str) -> BTreeSet<String> {
    samples(text)
        .keys()
        .map(|series| series.split('{').next().unwrap_or_default().to_string())
        .collect()
}

/// A logredact in pipe mode with an admin endpoint, ready, having masked
/// one token (so that every family has a sample).
fn running_with_admin() -> (Running, u16) {
    let admin = free_port();
    let mut run = Running::spawn(&["--admin", &format!("127.0.0.1:{admin}")]);
    run.wait_until_ready(admin);
    let token = TokenGen::new(18).token();
    // A detection is counted once its context (300 characters) is complete.
    run.write(format!("Authorization: Bearer {token}\n{}\n", "-".repeat(320)).as_bytes());
    run.read_at_least(1, Duration::from_secs(10));
    wait_for_metric(
        admin,
        "logredact_detections_total{rule=\"databricks-pat\",confidence=\"high\"} 1",
    );
    (run, admin)
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_live_scrape_passes_promtool_check_metrics() {
    let (run, admin) = running_with_admin();
    let (content_type, text) = scrape(admin, "text/plain");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let (ok, report) = promtool::run(
        &["check", "metrics"],
        &repo_path("."),
        Some(text.as_bytes()),
    );
    eprintln!("promtool check metrics: {}", report.trim());
    assert!(ok && report.trim().is_empty(), "{report}\n{text}");
    // Prometheus itself asks for OpenMetrics first, and gets the same
    // samples under the same names.
    let (content_type, openmetrics) = scrape(
        admin,
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    );
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert_eq!(sample_names(&openmetrics), sample_names(&text));
    drop(run);
}

#[test]
fn build_info_and_process_metrics_hold_sane_values() {
    let (run, admin) = running_with_admin();
    let started_before = now_seconds();
    let pid = run.child.id();
    let (_, text) = scrape(admin, "text/plain");
    let values = samples(&text);
    let value = |name: &str| -> f64 {
        *values
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
    };
    let build = format!(
        "logredact_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&build), 1.0);
    assert_eq!(
        values
            .keys()
            .filter(|k| k.starts_with("logredact_build_info"))
            .count(),
        1,
        "{text}"
    );
    assert_eq!(value("logredact_ready"), 1.0);

    let cpu = value("process_cpu_seconds_total");
    assert!((0.0..60.0).contains(&cpu), "cpu {cpu}");
    let rss = value("process_resident_memory_bytes");
    let rss_now = rss_kib(pid) as f64 * 1024.0;
    assert!(
        rss > 1e6 && rss > rss_now / 2.0 && rss < rss_now * 2.0,
        "resident {rss}, /proc/{pid}/status says {rss_now}"
    );
    assert!(value("process_virtual_memory_bytes") >= rss);
    let open = value("process_open_fds");
    let listed = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    assert!(
        open >= 3.0 && (open - listed).abs() <= 2.0,
        "open fds {open}, /proc/{pid}/fd lists {listed}"
    );
    assert!(value("process_max_fds") >= open);
    let start = value("process_start_time_seconds");
    assert!(
        start <= started_before + 1.0 && start > started_before - 60.0,
        "start time {start}, now {started_before}"
    );
    drop(run);
}

#[test]
fn the_ready_gauge_follows_readyz() {
    let admin = free_port();
    let upstream = free_port();
    let mut run = Running::spawn(&[
        "--admin",
        &format!("127.0.0.1:{admin}"),
        "--output",
        &format!("tcp://127.0.0.1:{upstream}"),
    ]);
    run.wait_for_port(admin);
    wait_for_metric(admin, "logredact_ready 0");
    let (status, body) = common::http_get(admin, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: an output is not connected\n")
    );
    let _collector = Collector::start(upstream);
    run.wait_for_probe(admin, "/readyz");
    wait_for_metric(admin, "logredact_ready 1");
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_tests() {
    let dir = repo_path("deploy/prometheus");
    let (ok, report) = promtool::run(&["check", "rules", "alerts.yaml"], &dir, None);
    eprintln!("promtool check rules: {}", report.trim());
    assert!(ok && report.contains("SUCCESS: 5 rules found"), "{report}");
    let (ok, report) = promtool::run(&["test", "rules", "alerts_test.yaml"], &dir, None);
    eprintln!("promtool test rules: {}", report.trim());
    assert!(ok && report.contains("SUCCESS"), "{report}");
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The alerting rules: (name, expression).
fn alert_rules() -> Vec<(String, String)> {
    let rules = yaml(&repo_path("deploy/prometheus/alerts.yaml"));
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").iter())
        .map(|rule| {
            (
                rule["alert"]
                    .as_str()
                    .expect("an alerting rule")
                    .to_string(),
                rule["expr"].as_str().expect("expr").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_alert_is_tested_firing_and_silent() {
    let tests = yaml(&repo_path("deploy/prometheus/alerts_test.yaml"));
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().expect("alert_rule_test"))
        .collect();
    let alerts = alert_rules();
    assert_eq!(
        alerts
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        [
            "LogredactErrors",
            "LogredactNotReady",
            "LogredactReloadFailing",
            "LogredactAuditIncomplete",
            "LogredactDetectionsSpiking",
        ]
    );
    for (name, _) in &alerts {
        let expected = |firing: bool| {
            cases.iter().any(|case| {
                case["alertname"] == name.as_str()
                    && case["exp_alerts"]
                        .as_array()
                        .is_some_and(|a| a.is_empty() != firing)
            })
        };
        assert!(expected(true), "{name}: no test where it fires");
        assert!(expected(false), "{name}: no test where it stays silent");
    }
}

/// The metric names a PromQL expression uses (logredact's and the process
/// metrics; nothing else is scraped from logredact).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let names = regex::Regex::new(r"\b(?:logredact|process)_[a-z_]+\b").unwrap();
    names
        .find_iter(expr)
        .map(|m| m.as_str().to_string())
        .collect()
}

/// Every PromQL expression of the dashboard: panel targets and template
/// variable queries.
fn dashboard_expressions(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if variable["type"] == "query" {
            exprs.push(
                variable["query"]["query"]
                    .as_str()
                    .expect("query")
                    .to_string(),
            );
        }
    }
    exprs
}

#[test]
fn the_dashboard_and_the_alerts_name_only_metrics_a_live_scrape_shows() {
    let path = repo_path("deploy/grafana/logredact.json");
    let dashboard: Value = serde_json::from_str(&read(&path)).expect("the dashboard is JSON");
    assert!(
        dashboard["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "{title}: id twice"
        );
        assert!(
            panel["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{title}"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(
            !panel["targets"].as_array().expect("targets").is_empty(),
            "{title}"
        );
    }

    let (run, admin) = running_with_admin();
    let (_, text) = scrape(admin, "text/plain");
    drop(run);
    let scraped = sample_names(&text);
    let dashboard_names: BTreeSet<String> = dashboard_expressions(&dashboard)
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    let alert_names: BTreeSet<String> = alert_rules()
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .collect();
    for (source, names) in [
        ("the dashboard", &dashboard_names),
        ("alerts.yaml", &alert_names),
    ] {
        for name in names {
            assert!(
                scraped.contains(name),
                "{source} uses {name}, which logredact does not expose:\n{text}"
            );
        }
    }
    // And the dashboard shows every logredact metric there is.
    for name in scraped.iter().filter(|n| n.starts_with("logredact_")) {
        assert!(
            dashboard_names.contains(name),
            "the dashboard shows nothing of {name}"
        );
    }
}

/// logredact's standard error on a pseudo-terminal, with `NO_COLOR` unset
/// or set to `no_color`: what it logs while starting and ending a run.
fn log_on_a_terminal(no_color: Option<&str>) -> Vec<u8> {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers given; no
    // name, terminal settings or window size are asked for.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned here only.
    let (mut master, slave) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    };
    let admin = free_port();
    let mut command = binary();
    command
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave));
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let mut child = command.spawn().expect("spawn logredact");
    // The terminal ends when the last copy of its slave side is closed.
    drop(command);
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let mut log = Vec::new();
    let mut buffer = [0; 4096];
    // The master side reports EIO once the slave side is closed and read out.
    while let Ok(n @ 1..) = master.read(&mut buffer) {
        log.extend_from_slice(&buffer[..n]);
    }
    assert!(
        String::from_utf8_lossy(&log).contains("admin endpoint"),
        "{}",
        String::from_utf8_lossy(&log)
    );
    log
}

#[test]
fn no_color_turns_off_the_colours_of_the_log_on_a_terminal() {
    const ESC: u8 = 0x1b;
    let coloured = log_on_a_terminal(None);
    assert!(
        coloured.contains(&ESC),
        "on a terminal the log is coloured: {}",
        String::from_utf8_lossy(&coloured)
    );
    let plain = log_on_a_terminal(Some("1"));
    assert!(
        !plain.contains(&ESC),
        "NO_COLOR=1: {}",
        String::from_utf8_lossy(&plain)
    );
    // no-color.org: an empty NO_COLOR is as if it were not set.
    let empty = log_on_a_terminal(Some(""));
    assert!(
        empty.contains(&ESC),
        "NO_COLOR=\"\": {}",
        String::from_utf8_lossy(&empty)
    );
}
