"""Coming from Pungi and MBS, and going back: modulemd and Pungi's variants/comps <-> factory.

The conversions are pure: documents in (read by the adapters in `pipeline/tools` and
`pipeline/formats`), factory definitions and the list of what could not be carried over out.
"""
