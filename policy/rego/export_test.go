package rego

// Compiles reports how many modules e has compiled, failed compiles
// included, so that tests can tell a reused query from a rebuilt one.
func (e *Engine) Compiles() int64 { return e.compiles.Load() }
