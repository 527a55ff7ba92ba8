//! The built-in default rules: those of `config/logredact.yaml`, embedded in
//! the binary.

use crate::config::Config;
use crate::scan::rule::RuleSpec;

/// Id of the Databricks personal access token rule.
pub const DATABRICKS_PAT: &str = "databricks-pat";

/// The rules logredact runs when no configuration is given.
pub fn default_rules() -> Vec<RuleSpec> {
    Config::builtin().rules
}

/// The `databricks-pat` rule: `\bdapi[0-9a-f]{32}\b` masked as `dapi****`.
pub fn databricks_pat() -> RuleSpec {
    default_rules()
        .into_iter()
        .find(|rule| rule.id == DATABRICKS_PAT)
        .unwrap_or_else(|| panic!("the built-in configuration has no {DATABRICKS_PAT} rule"))
}
