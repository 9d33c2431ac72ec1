"""Pictures, always drawn from run directories (never from live objects), with matplotlib's
object-oriented API (`Figure`, no pyplot), so no global backend is switched and figures can be
returned to notebooks as well as written to PNG."""
