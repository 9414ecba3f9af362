package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Delayed delivery. The broker's delay table comes from LSMQ_DELAY_LEVELS (what
// against-lsmq.sh starts the broker with; upstream's default otherwise). A delivery may not
// come before its due time minus delayTolerance (LSMQ_DELAY_TOLERANCE_MS), nor later than lateBound after it.

const upstreamLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

const lateBound = 10 * time.Second

// delayTolerance is LSMQ_DELAY_TOLERANCE_MS, default 50 ms (the broker runs on this machine).
var delayTolerance = func() time.Duration {
	if ms, err := strconv.Atoi(os.Getenv("LSMQ_DELAY_TOLERANCE_MS")); err == nil {
		return time.Duration(ms) * time.Millisecond
	}
	return 50 * time.Millisecond
}()

// levelDelay is the delay of level (1-based) in the broker's table; past the end, the last.
func levelDelay(level int) time.Duration {
	table := strings.TrimSpace(os.Getenv("LSMQ_DELAY_LEVELS"))
	if table == "" {
		table = upstreamLevels
	}
	parts := strings.Fields(table)
	if level > len(parts) {
		level = len(parts)
	}
	p := parts[level-1]
	n, err := strconv.Atoi(p[:len(p)-1])
	if err != nil {
		panic("bad delay level " + p)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[p[len(p)-1]]
	return time.Duration(n) * unit
}

// seenLog records deliveries by key.
type seenLog struct {
	mu  sync.Mutex
	all map[string][]Rec
}

func (l *seenLog) add(r Rec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.all == nil {
		l.all = map[string][]Rec{}
	}
	l.all[r.Key] = append(l.all[r.Key], r)
}

func (l *seenLog) of(key string) []Rec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Rec(nil), l.all[key]...)
}

// sendOne sends m and returns its msgId, or fails the scenario.
func sendOne(c *Ctx, p rocketmq.Producer, m *primitive.Message) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.SendSync(ctx, m)
	if err != nil {
		c.Fatal("send: %v", err)
	}
	if res.Status != primitive.SendOK {
		c.Fatal("send: status %d", res.Status)
	}
	return res.MsgID
}

// warmConsumer creates topic with one send and starts a consumer of it that answers every
// message but the warm-up one with answer; returns once the warm-up message arrived.
func warmConsumer(c *Ctx, p rocketmq.Producer, topic, group string, seen *seenLog,
	answer consumer.ConsumeResult, extra ...consumer.Option) {
	warm := "warm_" + c.runID
	m := primitive.NewMessage(topic, []byte("warm-up"))
	m.WithKeys([]string{warm})
	sendOne(c, p, m)
	c.Consumer(group, group+"_1", topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		r := newRec("c", m)
		seen.add(r)
		if r.Key == warm {
			return consumer.ConsumeSuccess
		}
		return answer
	}, extra...)
	c.Check(waitFor(c.budget(30*time.Second), func() bool { return len(seen.of(warm)) > 0 }),
		"the consumer is running (warm-up received)")
}

func delayLevel(c *Ctx) {
	const n = 4
	const level = 2
	topic := c.Name("dl")
	p := c.Producer(c.Name("dlP"))
	seen := &seenLog{}
	warmConsumer(c, p, topic, c.Name("dlC"), seen, consumer.ConsumeSuccess)
	delay := levelDelay(level)
	due := map[string]time.Time{}
	ids := map[string]string{}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("dl%d_%s", i, c.runID)
		m := primitive.NewMessage(topic, []byte("delayed "+key))
		m.WithKeys([]string{key})
		m.WithDelayTimeLevel(level)
		before := time.Now()
		ids[key] = sendOne(c, p, m)
		due[key] = before.Add(delay)
	}
	all := waitFor(c.budget(delay+lateBound), func() bool {
		for k := range due {
			if len(seen.of(k)) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(c.budget(1500 * time.Millisecond))
	c.Check(all, "all %d messages of delay level %d (%s) delivered", n, level, delay)
	var problems []string
	for k, d := range due {
		rs := seen.of(k)
		if len(rs) != 1 {
			problems = append(problems, fmt.Sprintf("%s delivered %d times", k, len(rs)))
			continue
		}
		r := rs[0]
		c.Info("%s received %+d ms from due", k, r.At.Sub(d).Milliseconds())
		if r.At.Before(d.Add(-delayTolerance)) {
			problems = append(problems, fmt.Sprintf("%s received %s before its due time", k, d.Sub(r.At)))
		}
		if r.At.After(d.Add(lateBound)) {
			problems = append(problems, fmt.Sprintf("%s received %s after its due time", k, r.At.Sub(d)))
		}
		if r.MsgID != ids[k] || r.Topic != topic {
			problems = append(problems, fmt.Sprintf("%s delivered as %s msgId %s (sent %s)", k, r.Topic, r.MsgID, ids[k]))
		}
	}
	report(c, "each delayed message delivered once, with its msgId, not before its delay", problems)
}

func retryBackoff(c *Ctx) {
	const n = 2
	const maxReconsume = 2
	topic := c.Name("rb")
	group := c.Name("rbC")
	dlq := "%DLQ%" + group
	p := c.Producer(c.Name("rbP"))
	// A first member's heartbeat makes the broker create %RETRY%<group>; the member that
	// then starts finds its route at once (the client polls routes every 30 s and
	// rebalances every 20 s: the back-off would drown in that otherwise).
	create := primitive.NewMessage(topic, []byte("creates the topic"))
	create.WithKeys([]string{"create_" + c.runID})
	sendOne(c, p, create)
	first := c.Consumer(group, group+"_0", topic, "*", func(*primitive.MessageExt) consumer.ConsumeResult {
		return consumer.ConsumeSuccess
	})
	_, err := WaitRoute(c.Admin(), "%RETRY%"+group, c.budget(20*time.Second))
	c.Check(err == nil, "the name server routes %%RETRY%%%s (%v)", group, err)
	first.Shutdown()
	seen := &seenLog{}
	warmConsumer(c, p, topic, group, seen, consumer.ConsumeRetryLater,
		consumer.WithMaxReconsumeTimes(maxReconsume))
	ids := map[string]string{}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("rb%d_%s", i, c.runID)
		m := primitive.NewMessage(topic, []byte("failing "+key))
		m.WithKeys([]string{key})
		ids[key] = sendOne(c, p, m)
	}
	var backoff time.Duration
	for r := 0; r < maxReconsume; r++ {
		backoff += levelDelay(3 + r)
	}
	all := waitFor(c.budget(backoff+2*lateBound), func() bool {
		for k := range ids {
			if len(seen.of(k)) < maxReconsume+1 {
				return false
			}
		}
		return true
	})
	c.Check(all, "each message delivered %d times (reconsumeTimes 0..%d)", maxReconsume+1, maxReconsume)

	dead := &seenLog{}
	c.Consumer(c.Name("rbD"), c.Name("rbD")+"_1", dlq, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		dead.add(newRec("d", m))
		return consumer.ConsumeSuccess
	})
	inDlq := waitFor(c.budget(30*time.Second), func() bool {
		for k := range ids {
			if len(dead.of(k)) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(c.budget(1500 * time.Millisecond))
	c.Check(inDlq, "each message is consumed from %s", dlq)

	var problems []string
	for k, id := range ids {
		rs := seen.of(k)
		if len(rs) != maxReconsume+1 {
			problems = append(problems, fmt.Sprintf("%s delivered %d times, expected %d", k, len(rs), maxReconsume+1))
		}
		for i, r := range rs {
			if int(r.ReconsumeTimes) != i || r.Topic != topic || r.MsgID != id {
				problems = append(problems, fmt.Sprintf("%s delivery %d: reconsumeTimes %d topic %s msgId %s",
					k, i, r.ReconsumeTimes, r.Topic, r.MsgID))
			}
			if i == 0 {
				continue
			}
			want := levelDelay(3 + i - 1)
			gap := r.At.Sub(rs[i-1].At)
			c.Info("%s redelivery %d after %d ms (back-off level %d = %s)", k, i, gap.Milliseconds(), 2+i, want)
			if gap < want-delayTolerance || gap > want+lateBound {
				problems = append(problems, fmt.Sprintf("%s redelivery %d came %s after the previous (back-off %s)",
					k, i, gap, want))
			}
		}
		ds := dead.of(k)
		if len(ds) != 1 {
			problems = append(problems, fmt.Sprintf("%s found %d times in %s", k, len(ds), dlq))
		} else if ds[0].Topic != dlq || ds[0].Body != "failing "+k || ds[0].MsgID != id {
			problems = append(problems, fmt.Sprintf("%s in the DLQ as %s msgId %s body %q", k, ds[0].Topic,
				ds[0].MsgID, ds[0].Body))
		}
	}
	report(c, "ConsumeRetryLater backs off by levels 3.., then the message is a dead letter", problems)
}
