// Package schematest validates JSON reports against the vpndiag.report/v1
// JSON Schema in tests (report/schema/vpndiag.report.v1.json), with format
// assertions on (date-time fields must be RFC 3339). It is imported only by
// tests, so the validator never ends up in the vpndiag binary.
package schematest

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vpndiag/vpndiag/report"
)

const schemaURL = "https://github.com/vpndiag/vpndiag/blob/main/report/schema/vpndiag.report.v1.json"

var (
	once    sync.Once
	schema  *jsonschema.Schema
	loadErr error
)

// Schema compiles the embedded schema once.
func Schema() (*jsonschema.Schema, error) {
	once.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(report.SchemaJSON()))
		if err != nil {
			loadErr = fmt.Errorf("parse %s: %w", report.SchemaPath, err)
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		if err := c.AddResource(schemaURL, doc); err != nil {
			loadErr = fmt.Errorf("add %s: %w", report.SchemaPath, err)
			return
		}
		schema, loadErr = c.Compile(schemaURL)
		if loadErr != nil {
			loadErr = fmt.Errorf("compile %s: %w", report.SchemaPath, loadErr)
		}
	})
	return schema, loadErr
}

// Validate checks one JSON document against the schema; the error lists
// every violation with its JSON pointer.
func Validate(js []byte) error {
	sch, err := Schema()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("does not match %s: %v", report.SchemaPath, err)
	}
	return nil
}
