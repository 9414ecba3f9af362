package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

var verboseOut bool

// abort is the panic value Fatal uses to end a scenario early.
type abort struct{}

// Ctx is one scenario run: its names, the clients it started and what went wrong.
type Ctx struct {
	scenario string
	namesrv  string
	runID    string
	start    time.Time
	deadline time.Time

	// note is said on the PASS line (figures a scenario measured).
	note string

	mu       sync.Mutex
	failures []string
	log      []string
	closers  []func()
}

func newCtx(scenario, namesrv string, timeout time.Duration) *Ctx {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	now := time.Now()
	return &Ctx{
		scenario: scenario,
		namesrv:  namesrv,
		runID:    fmt.Sprintf("%s%s", strings.ToLower(fmt.Sprintf("%x", now.Unix()&0xffffff)), hex.EncodeToString(b)),
		start:    now,
		deadline: now.Add(timeout),
	}
}

// Name gives a topic or group name unique to this run: go_<what>_<runID>.
func (c *Ctx) Name(what string) string {
	return "go_" + what + "_" + c.runID
}

func (c *Ctx) elapsed() float64 {
	return time.Since(c.start).Seconds()
}

// Info records a progress line (printed at once with -v, and under a FAIL line otherwise).
func (c *Ctx) Info(format string, args ...interface{}) {
	line := fmt.Sprintf("  [%5.1fs] %s", c.elapsed(), fmt.Sprintf(format, args...))
	c.mu.Lock()
	c.log = append(c.log, line)
	c.mu.Unlock()
	if verboseOut {
		fmt.Fprintln(os.Stderr, line)
	}
}

// Fail records a failed expectation; the scenario goes on.
func (c *Ctx) Fail(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.failures = append(c.failures, msg)
	c.mu.Unlock()
	c.Info("FAILED: %s", msg)
}

// Fatal records a failure and ends the scenario.
func (c *Ctx) Fatal(format string, args ...interface{}) {
	c.Fail(format, args...)
	panic(abort{})
}

// Check records a failure unless cond holds; it returns cond.
func (c *Ctx) Check(cond bool, format string, args ...interface{}) bool {
	if cond {
		c.Info("ok: %s", fmt.Sprintf(format, args...))
	} else {
		c.Fail(format, args...)
	}
	return cond
}

func (c *Ctx) ok() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.failures) == 0
}

func (c *Ctx) verdict() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failures) == 0 {
		if c.note != "" {
			return fmt.Sprintf("PASS %s %.1fs (%s)", c.scenario, c.elapsed(), c.note)
		}
		return fmt.Sprintf("PASS %s %.1fs", c.scenario, c.elapsed())
	}
	var b strings.Builder
	if !verboseOut {
		for _, l := range c.log {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "FAIL %s %.1fs: %s", c.scenario, c.elapsed(), strings.Join(c.failures, "; "))
	return b.String()
}

// remaining is the time left before the scenario's bound, less a margin for shutdown.
func (c *Ctx) remaining() time.Duration {
	return time.Until(c.deadline) - 4*time.Second
}

// budget caps want by the time the scenario has left.
func (c *Ctx) budget(want time.Duration) time.Duration {
	if r := c.remaining(); r < want {
		if r < 0 {
			return 0
		}
		return r
	}
	return want
}

func (c *Ctx) onClose(f func()) {
	c.mu.Lock()
	c.closers = append(c.closers, f)
	c.mu.Unlock()
}

// closeAll shuts the clients down, newest first, each bounded in time.
func (c *Ctx) closeAll() {
	c.mu.Lock()
	fs := c.closers
	c.closers = nil
	c.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		boundedCall(5*time.Second, fs[i])
	}
}

func boundedCall(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// resolver gives the name servers: c.namesrv, one host:port or several separated by ";".
func (c *Ctx) resolver() primitive.NsResolver {
	return primitive.NewPassthroughResolver(strings.Split(c.namesrv, ";"))
}

// Producer starts a producer of the given group (its own client instance).
func (c *Ctx) Producer(group string) rocketmq.Producer {
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(c.resolver()),
		producer.WithGroupName(group),
		producer.WithInstanceName("p_"+group),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(5*time.Second),
	)
	if err != nil {
		c.Fatal("new producer %s: %v", group, err)
	}
	if err := p.Start(); err != nil {
		c.Fatal("start producer %s: %v", group, err)
	}
	c.onClose(func() { _ = p.Shutdown() })
	return p
}

// Consumer is a started CLUSTERING push consumer and how to stop it (once).
type Consumer struct {
	PC       rocketmq.PushConsumer
	Instance string
	once     sync.Once
}

// Shutdown stops the consumer; the client commits its offsets on the way out.
func (k *Consumer) Shutdown() {
	k.once.Do(func() {
		boundedCall(10*time.Second, func() { _ = k.PC.Shutdown() })
	})
}

// Consumer starts a CLUSTERING push consumer of group (instance name makes its client id
// unique in this process) that starts from the first offset when the group has none, gets
// one message per call and hands each to handle. extra options come last (they win).
func (c *Ctx) Consumer(group, instance, topic, expr string,
	handle func(*primitive.MessageExt) consumer.ConsumeResult, extra ...consumer.Option) *Consumer {
	opts := append([]consumer.Option{
		consumer.WithNsResolver(c.resolver()),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumeMessageBatchMaxSize(1),
	}, extra...)
	pc, err := rocketmq.NewPushConsumer(opts...)
	if err != nil {
		c.Fatal("new consumer %s/%s: %v", group, instance, err)
	}
	sel := consumer.MessageSelector{Type: consumer.TAG, Expression: expr}
	err = pc.Subscribe(topic, sel, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		res := consumer.ConsumeSuccess
		for _, m := range msgs {
			if handle(m) == consumer.ConsumeRetryLater {
				res = consumer.ConsumeRetryLater
			}
		}
		return res, nil
	})
	if err != nil {
		c.Fatal("subscribe %s/%s to %s: %v", group, instance, topic, err)
	}
	if err := pc.Start(); err != nil {
		c.Fatal("start consumer %s/%s: %v", group, instance, err)
	}
	k := &Consumer{PC: pc, Instance: instance}
	c.onClose(k.Shutdown)
	c.Info("consumer %s/%s subscribed to %s with %q", group, instance, topic, expr)
	return k
}

// Admin gives an admin client (name server queries).
func (c *Ctx) Admin() admin.Admin {
	a, err := admin.NewAdmin(admin.WithResolver(c.resolver()))
	if err != nil {
		c.Fatal("new admin: %v", err)
	}
	c.onClose(func() { _ = a.Close() })
	return a
}

// Route asks the name server for topic's write queues: the queues, or the error.
func Route(a admin.Admin, topic string) ([]*primitive.MessageQueue, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.FetchPublishMessageQueues(ctx, topic)
}

// WaitRoute polls the name server until topic has at least one write queue.
func WaitRoute(a admin.Admin, topic string, d time.Duration) ([]*primitive.MessageQueue, error) {
	end := time.Now().Add(d)
	for {
		mqs, err := Route(a, topic)
		if err == nil && len(mqs) > 0 {
			return mqs, nil
		}
		if err == nil {
			err = fmt.Errorf("route has no write queue")
		}
		if time.Now().After(end) {
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
