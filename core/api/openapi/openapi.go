// Package openapi holds the API's OpenAPI 3.1 document (openapi.json),
// kept by hand beside the handlers and served at GET /api/openapi.json.
// The tests of core/api keep it true: every route has its operation and
// every answer those tests get validates against it (openapitest).
package openapi

import _ "embed"

//go:embed openapi.json
var document string

// Document returns the OpenAPI document (JSON).
func Document() []byte { return []byte(document) }
