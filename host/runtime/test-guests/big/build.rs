//! Generates the bulk of the big bench guest into `$OUT_DIR`: `FUNCTIONS` distinct small
//! functions (code, so compiling has real work) and a `TABLE_BYTES` pseudorandom table (data,
//! which a zero table would not give: zeros go to `.bss`), together about 1 MiB of component.

use std::fmt::Write as _;
use std::path::PathBuf;

const FUNCTIONS: u64 = 5100;
const TABLE_BYTES: usize = 512 * 1024;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let table: Vec<u8> = (0..TABLE_BYTES).map(|_| next().to_le_bytes()[3]).collect();
    std::fs::write(out.join("table.bin"), table)?;

    let mut code = String::new();
    for i in 0..FUNCTIONS {
        let (a, b, c) = (next() | 1, next(), next() % 29 + 3);
        writeln!(
            code,
            "#[inline(never)] fn f{i}(x: u64) -> u64 {{ let mut h = (x ^ {b}).wrapping_mul({a}); \
             h ^= h >> {c}; h = h.rotate_left({}).wrapping_add({}); if h & 1 == 0 {{ h ^ {} }} \
             else {{ h.wrapping_mul({}) }} }}",
            i % 63 + 1,
            next(),
            next(),
            next() | 1
        )?;
    }
    writeln!(code, "static FUNCTIONS: [fn(u64) -> u64; {FUNCTIONS}] = [")?;
    for i in 0..FUNCTIONS {
        write!(code, "f{i},")?;
    }
    writeln!(code, "];")?;
    std::fs::write(out.join("functions.rs"), code)?;
    Ok(())
}
