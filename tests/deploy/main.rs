//! The deployments under `deploy/` and the container image, verified
//! without a container engine, a kubelet, Fluent Bit or Fluentd:
//!
//! - `manifests`: the Kubernetes manifests against the Kubernetes API
//!   schemas (`kubernetes-validate --strict`), and the Kubernetes, Fluent Bit
//!   and Fluentd configurations against what logredact's integration relies
//!   on (hardening, probes, the command-line interface of SPEC §9, the exec
//!   input's `Threaded`/`Oneshot`/`Buf_Size`, consistent ports, identical
//!   classic and YAML variants);
//! - `image`: the Dockerfile (hadolint, its final stage), the static build
//!   and the image's file layout run under `chroot`;
//! - `integrations`: each integration played end to end, logredact started
//!   with the command line read from the deployment file;
//! - `forward_hop`: the forward-protocol hop of Fluent Bit and Fluentd, its
//!   ports, routes and acknowledgements consistent with logredact's command
//!   line (the protocol itself is played by `tests/forward`).
//!
//! The other modules read what those share: YAML (with serde_yaml) and
//! logredact's configuration (with logredact's own reader), the Dockerfile,
//! Fluent Bit's and Fluentd's formats, the Kubernetes objects, logredact's
//! command line as the files write it, and the validators (`tools`).

#[path = "../common/mod.rs"]
mod common;

mod dockerfile;
mod fluent;
mod forward_hop;
mod image;
mod integrations;
mod invocation;
mod kubernetes;
mod manifests;
mod tools;
mod yaml;

/// Where the image puts the binary, and so where every deployment runs it.
const IMAGE_BINARY: &str = "/usr/local/bin/logredact";
