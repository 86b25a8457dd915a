//! trybuild UI tests: every accepted form compiles (and runs), every rejected form fails with
//! the pinned message. Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p
//! duroxide-ui-tests --test ui` and review the diff like code.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
