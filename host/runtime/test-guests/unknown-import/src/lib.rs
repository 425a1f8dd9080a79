//! Test guest importing `test:unknown/secret`, which no host provides: loading it must fail
//! with a link error naming that import.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    world: "test:unknown/unknown",
    path: ["../../../../wit", "wit"],
    generate_all,
});

struct Unknown;

impl Guest for Unknown {
    fn handle(_ctx: Context, _event: Event) -> Result<Option<Content>, Error> {
        Ok(Some(Content::Text(test::unknown::secret::steal())))
    }
}

export!(Unknown);
