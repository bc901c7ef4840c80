// Package driver is the side of compat/drivers/__init__.py's JSON contract that every Go
// driver shares: its flags, its one JSON answer (or {"error": ...} and exit 1), a member's
// event lines and its "close" cue on stdin, and the fixed plans of the admin and ctp actions.
package driver

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// The admin action's fixed plan and the ctp action's transaction size, as
// compat/drivers/__init__.py defines them.
const (
	AdminAlteredRetention = "7200000"
	AdminPartitions       = 3
	AdminRecords          = 10
	AdminDeleteBefore     = 4
	AdminCommitted        = 5
	TxnBatch              = 5
)

// AdminConfigs are the topic configs the admin action creates its topic with.
var AdminConfigs = map[string]string{"retention.ms": "3600000", "cleanup.policy": "compact,delete"}

// Codecs are the codecs the codecs action tries, in the contract's order.
var Codecs = []string{"gzip", "snappy", "lz4", "zstd"}

// Args are the contract's flags.
type Args struct {
	Bootstrap        string
	Topic            string
	Action           string
	Partitions       int
	Count            int
	Timeout          time.Duration
	Group            string
	InstanceID       string
	SessionTimeoutMs int
	GroupProtocol    string      // "classic", or "consumer" (KIP-848) where the driver offers it
	Security         *Security   // nil: PLAINTEXT
	TLS              *tls.Config // from Security, when its protocol is SSL or SASL_SSL
}

// Security is --security: how to connect to a listener that is not PLAINTEXT (see
// compat/drivers/__init__.py). Ca, Cert and Key are PEM file paths; Cert and Key: mutual TLS.
type Security struct {
	Protocol  string  `json:"protocol"`
	Mechanism *string `json:"mechanism"`
	Username  *string `json:"username"`
	Password  *string `json:"password"`
	Ca        *string `json:"ca"`
	Cert      *string `json:"cert"`
	Key       *string `json:"key"`
}

// SASL says whether the listener wants a SASL handshake.
func (s *Security) SASL() bool { return s.Protocol == "SASL_PLAINTEXT" || s.Protocol == "SASL_SSL" }

func (s *Security) tlsConfig() (*tls.Config, error) {
	if s.Protocol != "SSL" && s.Protocol != "SASL_SSL" {
		return nil, nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.Ca != nil {
		pem, err := os.ReadFile(*s.Ca)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", *s.Ca)
		}
	}
	if s.Cert != nil && s.Key != nil {
		pair, err := tls.LoadX509KeyPair(*s.Cert, *s.Key)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

// Brokers is the bootstrap list as clients take it.
func (a *Args) Brokers() []string { return strings.Split(a.Bootstrap, ",") }

// Key and Value are the contract's record k{i}/v{i}.
func Key(i int) string   { return fmt.Sprintf("k%d", i) }
func Value(i int) string { return fmt.Sprintf("v%d", i) }

// Record is one read record: [partition, offset, key, value].
type Record = []any

// Action answers one --action with the JSON object to print.
type Action func(*Args) (any, error)

func parse() *Args {
	a := &Args{}
	var timeout float64
	flag.StringVar(&a.Bootstrap, "bootstrap", "", "host:port")
	flag.StringVar(&a.Topic, "topic", "", "topic")
	flag.StringVar(&a.Action, "action", "", "action")
	flag.IntVar(&a.Partitions, "partitions", 3, "partitions")
	flag.IntVar(&a.Count, "count", 1000, "records")
	flag.Float64Var(&timeout, "timeout", 30, "seconds")
	flag.StringVar(&a.Group, "group", "", "group")
	flag.StringVar(&a.InstanceID, "instance-id", "", "group.instance.id")
	flag.IntVar(&a.SessionTimeoutMs, "session-timeout-ms", 6000, "session timeout")
	flag.StringVar(&a.GroupProtocol, "group-protocol", "classic", "group.protocol: classic or consumer")
	security := flag.String("security", "", "a Security as JSON; absent: PLAINTEXT")
	flag.Parse()
	a.Timeout = time.Duration(timeout * float64(time.Second))
	if *security != "" {
		a.Security = &Security{}
		if err := json.Unmarshal([]byte(*security), a.Security); err != nil {
			fail(fmt.Errorf("--security: %w", err))
		}
		config, err := a.Security.tlsConfig()
		if err != nil {
			fail(fmt.Errorf("--security: %w", err))
		}
		a.TLS = config
	}
	return a
}

// Main runs the action named by --action and prints its answer; the driver's main calls it.
func Main(actions map[string]Action) {
	args := parse()
	action, ok := actions[args.Action]
	if !ok {
		fail(fmt.Errorf("action %q is not offered by this driver", args.Action))
	}
	result, err := action(args)
	if err != nil {
		fail(err)
	}
	Emit(result)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "%+v\n", err)
	Emit(map[string]string{"error": err.Error()})
	os.Exit(1)
}

var emitting sync.Mutex

// Emit prints one JSON line on stdout: the answer, or one event of a member's stream (which
// several goroutines may emit at once: one line never interleaves with another).
func Emit(v any) {
	line, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	emitting.Lock()
	defer emitting.Unlock()
	fmt.Println(string(line))
}

// CloseRequested is closed once stdin says "close" or ends: a member's cue to leave its group.
func CloseRequested() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			if strings.TrimSpace(scanner.Text()) == "close" {
				break
			}
		}
		close(done)
	}()
	return done
}
