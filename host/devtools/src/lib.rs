//! Developer CLI: minihost app new/build/run, a local simulator on the real runtime.
