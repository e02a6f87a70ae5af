package report

import _ "embed" // the JSON Schema of the report

// schemaJSON is the JSON Schema (draft 2020-12) of vpndiag.report/v1.
//
//go:embed schema/vpndiag.report.v1.json
var schemaJSON []byte

// SchemaPath is where the JSON Schema lives in the repository.
const SchemaPath = "report/schema/vpndiag.report.v1.json"

// SchemaJSON returns the JSON Schema (draft 2020-12) that describes the
// vpndiag.report/v1 JSON every command writes; `vpndiag report --schema`
// prints it.
func SchemaJSON() []byte { return append([]byte(nil), schemaJSON...) }
