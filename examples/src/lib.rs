//! Nothing here: the programs are the `[[example]]` targets beside this crate.
