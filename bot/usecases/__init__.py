"""The use cases, grouped by who they serve: asking for reviews (`asking`), working on a request
(`reviewing`) and a person's own settings and data (`people`). Each takes a `Context` holding the
open transaction; a `Refused` raised anywhere rolls it back and becomes the reply."""
