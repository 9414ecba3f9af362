// Command interop checks that the unmodified Apache RocketMQ Go client
// (github.com/apache/rocketmq-client-go/v2) works against a name server and broker.
//
//	go run . -namesrv 127.0.0.1:9876 -scenario produce-consume
//	go run . -namesrv 127.0.0.1:9876 -scenario all
//	go run . -namesrv 127.0.0.1:9876 -create-topic NAME [-broker 127.0.0.1:10911]
//	go run . -namesrv 127.0.0.1:9876 -wait-ready 50s
//
// Every scenario uses fresh topic and group names, prints one "PASS name ..." or
// "FAIL name ...: reason" line and is bounded by -timeout; the exit status is 1 if any
// scenario failed. -create-topic is a helper for suites whose client cannot create topics
// (ali-ons): with -broker it sends UPDATE_AND_CREATE_TOPIC through the Go admin API,
// otherwise it produces one message so that the broker auto-creates the topic; either way it
// waits until the name server has a route for the topic. -wait-ready waits until a broker
// has registered (the name server routes TBW102).
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

type scenario struct {
	name      string
	desc      string
	run       func(*Ctx)
	onlyNamed bool // not in "all": needs a set-up of its own
}

var scenarios = []scenario{
	{"produce-consume", "tags and keys round trip; a TagA subscriber gets exactly the TagA messages", produceConsume, false},
	{"autocreate", "first send to an unknown topic creates it through TBW102", autoCreate, false},
	{"clustering", "two members of one group share the queues without loss", clustering, false},
	{"offset-resume", "a restarted member of the group resumes from the committed offsets", offsetResume, false},
	{"retry", "a message answered ConsumeRetryLater comes back through %RETRY%<group>", retry, false},
	{"delay-level", "a delay-level send is delivered once, not before its delay", delayLevel, false},
	{"retry-backoff", "ConsumeRetryLater backs off by levels 3.. and ends in %DLQ%<group>", retryBackoff, false},
	{"replica-failover", "a consumer goes on from the replica when the master is killed (against-lsmq-replicas.sh)",
		replicaFailover, true},
	{"controller-failover", "sends and a consumer go on when the controller replaces a killed master (against-lsmq-controller.sh)",
		controllerFailover, true},
}

func main() {
	namesrv := flag.String("namesrv", os.Getenv("NAMESRV_ADDR"), "name server host:port (default $NAMESRV_ADDR)")
	which := flag.String("scenario", "all", "scenario name, comma-separated names, or all")
	timeout := flag.Duration("timeout", 58*time.Second, "upper bound of one scenario")
	createTopic := flag.String("create-topic", "", "create this topic and exit (helper for the Node.js suite)")
	broker := flag.String("broker", "", "with -create-topic: broker address for UPDATE_AND_CREATE_TOPIC; empty: auto-create by producing one message")
	queues := flag.Int("queues", 4, "with -create-topic -broker: read/write queue count")
	waitReady := flag.Duration("wait-ready", 0, "wait up to this long until the name server routes TBW102 (a broker registered), then exit")
	verbose := flag.Bool("v", false, "print progress lines and the client's warnings")
	list := flag.Bool("list", false, "list the scenarios and exit")
	flag.Parse()

	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-16s %s\n", s.name, s.desc)
		}
		return
	}
	if *namesrv == "" {
		fmt.Fprintln(os.Stderr, "interop: -namesrv (or NAMESRV_ADDR) is required")
		os.Exit(2)
	}
	verboseOut = *verbose
	if *verbose {
		rlog.SetLogLevel("warn")
	} else {
		rlog.SetLogLevel("error")
	}

	if *waitReady > 0 {
		start := time.Now()
		if err := waitReadyHelper(*namesrv, *waitReady); err != nil {
			fmt.Printf("FAIL ready %.1fs: no route for TBW102 from %s: %v\n", time.Since(start).Seconds(), *namesrv, err)
			os.Exit(1)
		}
		fmt.Printf("ready: %s routes TBW102 (%.1fs)\n", *namesrv, time.Since(start).Seconds())
		return
	}

	if *createTopic != "" {
		start := time.Now()
		if err := createTopicHelper(*namesrv, *createTopic, *broker, *queues, *timeout); err != nil {
			fmt.Printf("FAIL create-topic %s %.1fs: %v\n", *createTopic, time.Since(start).Seconds(), err)
			os.Exit(1)
		}
		fmt.Printf("created topic %s in %.1fs\n", *createTopic, time.Since(start).Seconds())
		return
	}

	var todo []scenario
	if *which == "all" {
		for _, s := range scenarios {
			if !s.onlyNamed {
				todo = append(todo, s)
			}
		}
	} else {
		for _, n := range strings.Split(*which, ",") {
			found := false
			for _, s := range scenarios {
				if s.name == n {
					todo = append(todo, s)
					found = true
				}
			}
			if !found {
				names := make([]string, 0, len(scenarios))
				for _, s := range scenarios {
					names = append(names, s.name)
				}
				sort.Strings(names)
				fmt.Fprintf(os.Stderr, "interop: unknown scenario %q (known: %s)\n", n, strings.Join(names, " "))
				os.Exit(2)
			}
		}
	}

	failed := 0
	for _, s := range todo {
		if !runOne(s, *namesrv, *timeout) {
			failed++
		}
	}
	if len(todo) > 1 {
		fmt.Printf("%d passed, %d failed\n", len(todo)-failed, failed)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// runOne runs a scenario in its own goroutine under a watchdog. A scenario that overruns
// its bound is reported as failed and ends the process: its client goroutines cannot be
// relied on to stop.
func runOne(s scenario, namesrv string, timeout time.Duration) bool {
	ctx := newCtx(s.name, namesrv, timeout)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(abort); !ok {
					ctx.Fail("panic: %v", r)
				}
			}
		}()
		s.run(ctx)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		ctx.Fail("did not finish within %s", timeout)
		fmt.Println(ctx.verdict())
		os.Exit(1)
	}
	ctx.closeAll()
	fmt.Println(ctx.verdict())
	return ctx.ok()
}
