//! YAML files, read with serde_yaml into JSON values: the checks index and
//! compare trees, whatever the file.
//!
//! serde_yaml reads YAML 1.2, whereas Kubernetes and kubernetes-validate read
//! YAML 1.1: a plain `0440` is an octal number to them and a string here,
//! and `on`/`off`/`yes`/`no` are booleans to them and strings here. The
//! checks that meet such a value say so where they read it.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::common::read;

/// The documents of a YAML text (empty documents left out); `what` names it
/// in a failure.
pub fn documents(text: &str, what: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
        })
        .filter(|document| !document.is_null())
        .collect()
}

/// The documents of a YAML file.
pub fn file_documents(path: &Path) -> Vec<Value> {
    documents(&read(path), &path.display().to_string())
}

/// The one document of a YAML text.
pub fn text_document(text: &str, what: &str) -> Value {
    let mut documents = documents(text, what);
    assert_eq!(documents.len(), 1, "{what}: one document expected");
    documents.remove(0)
}

/// The one document of a YAML file.
pub fn document(path: &Path) -> Value {
    text_document(&read(path), &path.display().to_string())
}
