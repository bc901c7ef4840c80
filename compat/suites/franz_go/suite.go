// Package franz_go pins franz-go so that `go test github.com/twmb/franz-go/pkg/kgo` runs the
// release's own kgo tests from the module cache; compat/suite_franz_go.py drives it.
package franz_go

import _ "github.com/twmb/franz-go/pkg/kgo"
