// Package kafka_go pins segmentio/kafka-go so that `go test github.com/segmentio/kafka-go` runs
// the release's own tests from the module cache; compat/suite_kafka_go.py drives it.
package kafka_go

import (
	_ "github.com/segmentio/kafka-go"
	_ "github.com/segmentio/kafka-go/sasl"
)
