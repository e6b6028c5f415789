use pyo3::prelude::*;
#[pymodule]
fn streamfold_edge(_m: &Bound<'_, PyModule>) -> PyResult<()> { Ok(()) }
