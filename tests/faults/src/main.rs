//! Fault injection and soak suite (see `tests/faults/run.sh`).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("the fault suite is not built yet")
}
