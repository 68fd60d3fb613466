//! Support for the CLI's experiments and the demo, outside the library's
//! documented surface: the bundled corpora ([`corpus`]), the workload that
//! sets drafter and oracle trees against the speed of light on real text
//! ([`workload`]), and the limits of every size their flags set
//! ([`limits`]). Hidden from the docs: a server never needs it, and it may
//! change with the CLI.

#[cfg(feature = "corpora")]
pub mod corpus;
pub mod limits;
pub mod workload;
