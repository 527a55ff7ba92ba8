//! The built-in default rule set: the Databricks personal access token rule
//! of SPEC §1 and §4.

use crate::scan::rule::{DEFAULT_WINDOW, RuleSpec};

/// Id of the default rule.
pub const DATABRICKS_PAT: &str = "databricks-pat";

/// The `databricks-pat` rule: `\bdapi[0-9a-f]{32}\b` masked as `dapi****`.
pub fn databricks_pat() -> RuleSpec {
    let terms = |list: &[&str]| list.iter().map(|t| t.to_string()).collect();
    RuleSpec {
        id: DATABRICKS_PAT.into(),
        pattern: r"\bdapi[0-9a-f]{32}\b".into(),
        mask: "dapi****".into(),
        window: DEFAULT_WINDOW,
        keywords: terms(&[
            "databricks",
            "dapi",
            "personal access token",
            "pat",
            "workspace",
            "databricks token",
            "access token",
            "bearer",
            "api key",
            "api_key",
            "apikey",
            "access key",
            "auth token",
            "authorization",
            "conn str",
            "connection string",
            "connectionstring",
            "cookie",
            "credential",
            "database",
        ]),
        exclusions: terms(&["template", "example", "placeholder", "sample"]),
        allow: Vec::new(),
    }
}

/// The rules logredact runs when no configuration is given.
pub fn default_rules() -> Vec<RuleSpec> {
    vec![databricks_pat()]
}
