package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// ---------------------------------------------------------------- produce-consume

// produceConsume sends TagA, TagB and untagged messages with two keys and a user property
// each, then checks that a consumer subscribed to "TagA" gets exactly the TagA ones, intact.
func produceConsume(c *Ctx) {
	const n = 30
	topic := c.Name("pc")
	group := c.Name("pcC")
	p := c.Producer(c.Name("pcP"))
	tagOf := func(i int) string {
		switch i % 3 {
		case 0:
			return "TagA"
		case 1:
			return "TagB"
		}
		return ""
	}
	sent, _ := sendMany(c, p, topic, "pc", n, tagOf)
	c.Check(len(sent) == n, "all %d sends acknowledged SEND_OK (%d)", n, len(sent))

	tagA := map[string]*Sent{}
	for k, s := range sent {
		if s.Tags == "TagA" {
			tagA[k] = s
		}
	}
	log := &Log{}
	c.Consumer(group, group+"_1", topic, "TagA", func(m *primitive.MessageExt) consumer.ConsumeResult {
		log.Add(newRec("c1", m))
		return consumer.ConsumeSuccess
	})
	all := waitFor(c.budget(40*time.Second), func() bool { return log.DistinctIn(tagA) == len(tagA) })
	c.Check(all, "TagA subscriber received all %d TagA messages (%d distinct)", len(tagA), log.DistinctIn(tagA))
	time.Sleep(c.budget(3 * time.Second)) // anything unexpected arriving late shows up here

	var problems []string
	other, dups := 0, 0
	seen := map[string]int{}
	for _, r := range log.Snapshot() {
		s, ok := tagA[r.Key]
		if !ok {
			other++
			problems = append(problems, "unexpected delivery "+r.String())
			continue
		}
		seen[r.Key]++
		if seen[r.Key] == 2 {
			dups++
		}
		problems = append(problems, checkContent(r, s, topic, true)...)
	}
	c.Check(other == 0, "no TagB, untagged or unknown message reached the TagA subscriber (%d)", other)
	c.Check(dups == 0, "no TagA message delivered twice (%d)", dups)
	report(c, "topic, tags, keys, body, user property, msgId, queue and offset of every delivery match the send", problems)
}

// ---------------------------------------------------------------- autocreate

// autoCreate checks that the name server does not know a fresh topic, that the Go
// producer's first send to it succeeds (route lookup fails, so the client uses the TBW102
// route and the broker creates the topic), that the name server then routes the topic with
// the producer's default of 4 queues, and that what was sent can be consumed.
func autoCreate(c *Ctx) {
	topic := c.Name("ac")
	a := c.Admin()
	mqs, err := Route(a, topic)
	c.Check(err != nil || len(mqs) == 0, "name server has no route for %s before the first send (err=%v, %d queues)",
		topic, err, len(mqs))

	p := c.Producer(c.Name("acP"))
	sent, order := sendMany(c, p, topic, "ac", 4, func(int) string { return "TagAC" })
	c.Check(len(sent) == 4, "4 sends to the new topic acknowledged SEND_OK (%d)", len(sent))
	if len(order) > 0 {
		r := order[0].Result
		c.Info("first send result: status=%d msgId=%s offsetMsgId=%s queue=%v queueOffset=%d region=%q traceOn=%v",
			r.Status, r.MsgID, r.OffsetMsgID, r.MessageQueue, r.QueueOffset, r.RegionID, r.TraceOn)
	}

	mqs, err = WaitRoute(a, topic, c.budget(10*time.Second))
	if c.Check(err == nil, "name server routes %s after the first send (%v)", topic, err) {
		ids := map[int]bool{}
		for _, mq := range mqs {
			ids[mq.QueueId] = true
		}
		c.Check(len(mqs) == 4 && len(ids) == 4,
			"auto-created topic has 4 write queues (producer defaultTopicQueueNums=4): %d queues %v", len(mqs), mqs)
	}

	log := &Log{}
	group := c.Name("acC")
	c.Consumer(group, group+"_1", topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		log.Add(newRec("c1", m))
		return consumer.ConsumeSuccess
	})
	all := waitFor(c.budget(30*time.Second), func() bool { return log.DistinctIn(sent) == len(sent) })
	c.Check(all, "consumer received the %d messages sent to the auto-created topic (%d)", len(sent), log.DistinctIn(sent))
	var problems []string
	for _, r := range log.Snapshot() {
		if s, ok := sent[r.Key]; ok {
			problems = append(problems, checkContent(r, s, topic, true)...)
		} else {
			problems = append(problems, "unexpected delivery "+r.String())
		}
	}
	report(c, "content of every delivery matches the send", problems)
}

// ---------------------------------------------------------------- clustering

// clustering starts two members of one group on a 4-queue topic and sends rounds of
// messages until a round is split between them on disjoint queues; across all rounds no
// message may be lost.
func clustering(c *Ctx) {
	topic := c.Name("cl")
	group := c.Name("clC")
	p := c.Producer(c.Name("clP"))
	warm, _ := sendMany(c, p, topic, "warm", 1, func(int) string { return "Warm" })
	if len(warm) != 1 {
		c.Fatal("warm-up send (creates the topic) failed")
	}
	a := c.Admin()
	mqs, err := WaitRoute(a, topic, c.budget(10*time.Second))
	if err != nil {
		c.Fatal("no route for %s: %v", topic, err)
	}
	c.Check(len(mqs) >= 2, "topic has >= 2 queues to share (%d)", len(mqs))

	logs := map[string]*Log{"A": {}, "B": {}}
	for _, who := range []string{"A", "B"} {
		l := logs[who]
		w := who
		c.Consumer(group, group+"_"+who, topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
			l.Add(newRec(w, m))
			return consumer.ConsumeSuccess
		})
	}

	all := map[string]*Sent{}
	settled := false
	for round := 1; !settled; round++ {
		if c.remaining() < 12*time.Second {
			break
		}
		sent, _ := sendMany(c, p, topic, fmt.Sprintf("r%d_", round), 16, func(i int) string { return fmt.Sprintf("T%d", i%3) })
		for k, s := range sent {
			all[k] = s
		}
		got := waitFor(c.budget(10*time.Second), func() bool {
			return logs["A"].DistinctIn(sent)+logs["B"].DistinctIn(sent) >= len(sent)
		})
		time.Sleep(500 * time.Millisecond)
		qa, qb := map[int]bool{}, map[int]bool{}
		na, nb := 0, 0
		for who, l := range logs {
			for _, r := range l.Snapshot() {
				if _, ok := sent[r.Key]; !ok {
					continue
				}
				if who == "A" {
					qa[r.QueueID] = true
					na++
				} else {
					qb[r.QueueID] = true
					nb++
				}
			}
		}
		disjoint := true
		for q := range qa {
			if qb[q] {
				disjoint = false
			}
		}
		c.Info("round %d: all delivered=%v; A got %d from queues %v, B got %d from queues %v", round, got,
			na, keysOf(qa), nb, keysOf(qb))
		settled = got && na > 0 && nb > 0 && disjoint && na+nb == len(sent)
	}
	c.Check(settled, "a round of messages was split between both members on disjoint queues, each message once")

	// no loss over all rounds (messages sent while the members were still rebalancing included)
	waitFor(c.budget(5*time.Second), func() bool {
		return distinctUnion(logs, all) == len(all)
	})
	lost := len(all) - distinctUnion(logs, all)
	c.Check(lost == 0, "no message lost: %d of %d delivered to some member", len(all)-lost, len(all))
	var problems []string
	for _, l := range logs {
		for _, r := range l.Snapshot() {
			if s, ok := all[r.Key]; ok {
				problems = append(problems, checkContent(r, s, topic, true)...)
			}
		}
	}
	report(c, "content of every delivery matches the send", problems)
}

func keysOf(m map[int]bool) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

func distinctUnion(logs map[string]*Log, keys map[string]*Sent) int {
	seen := map[string]bool{}
	for _, l := range logs {
		for _, r := range l.Snapshot() {
			if _, ok := keys[r.Key]; ok {
				seen[r.Key] = true
			}
		}
	}
	return len(seen)
}

// ---------------------------------------------------------------- offset-resume

// offsetResume: member 1 consumes a first batch and shuts down (its offsets are committed
// periodically and on shutdown); a second batch is sent while the group has no member;
// member 2 of the same group, configured to start from the first offset when the broker
// has none, must get the second batch and none of the first.
func offsetResume(c *Ctx) {
	const n1, n2 = 20, 20
	topic := c.Name("or")
	group := c.Name("orC")
	p := c.Producer(c.Name("orP"))
	first, _ := sendMany(c, p, topic, "first", n1, func(int) string { return "First" })
	c.Check(len(first) == n1, "first batch: %d sends acknowledged (%d)", n1, len(first))

	log1 := &Log{}
	c1 := c.Consumer(group, group+"_1", topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		log1.Add(newRec("c1", m))
		return consumer.ConsumeSuccess
	})
	all1 := waitFor(c.budget(25*time.Second), func() bool { return log1.DistinctIn(first) == n1 })
	c.Check(all1, "member 1 received the first batch (%d/%d)", log1.DistinctIn(first), n1)
	// The Go client commits offsets every 5 s and again on shutdown; wait for one periodic
	// commit so the check does not depend on the shutdown path alone.
	time.Sleep(c.budget(6 * time.Second))
	t := time.Now()
	c1.Shutdown()
	c.Info("member 1 shut down in %.2fs", time.Since(t).Seconds())

	second, _ := sendMany(c, p, topic, "second", n2, func(int) string { return "Second" })
	c.Check(len(second) == n2, "second batch: %d sends acknowledged (%d)", n2, len(second))

	log2 := &Log{}
	c.Consumer(group, group+"_2", topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		log2.Add(newRec("c2", m))
		return consumer.ConsumeSuccess
	})
	all2 := waitFor(c.budget(25*time.Second), func() bool { return log2.DistinctIn(second) == n2 })
	c.Check(all2, "member 2 received the whole second batch (%d/%d)", log2.DistinctIn(second), n2)
	time.Sleep(c.budget(2 * time.Second))
	again := log2.DistinctIn(first)
	c.Check(again == 0, "member 2 resumed from the committed offsets: %d first-batch messages redelivered", again)
	var problems []string
	for _, r := range log2.Snapshot() {
		if s, ok := second[r.Key]; ok {
			problems = append(problems, checkContent(r, s, topic, true)...)
		} else if _, ok := first[r.Key]; !ok {
			problems = append(problems, "unexpected delivery "+r.String())
		}
	}
	report(c, "content of every delivery to member 2 matches the send", problems)
}

// ---------------------------------------------------------------- retry

// retry: the listener answers ConsumeRetryLater the first time it sees each message; the
// client sends it back (CONSUMER_SEND_MSG_BACK, broker-chosen delay level), the broker puts
// it in %RETRY%<group> (upstream after delay level 3 = 10 s), and it must come back with
// reconsumeTimes 1, the original topic (restored by the client from RETRY_TOPIC), the same
// body, tags, keys, properties and msgId, and an ORIGIN_MESSAGE_ID.
func retry(c *Ctx) {
	const n = 2
	topic := c.Name("rt")
	group := c.Name("rtC")
	p := c.Producer(c.Name("rtP"))
	sent, _ := sendMany(c, p, topic, "retry", n, func(int) string { return "TagR" })
	c.Check(len(sent) == n, "%d sends acknowledged (%d)", n, len(sent))

	log := &Log{}
	var mu sync.Mutex
	calls := map[string]int{}
	c.Consumer(group, group+"_1", topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		r := newRec("c", m)
		log.Add(r)
		mu.Lock()
		calls[r.Key]++
		k := calls[r.Key]
		mu.Unlock()
		if k == 1 {
			return consumer.ConsumeRetryLater
		}
		return consumer.ConsumeSuccess
	})
	t0 := time.Now()
	redelivered := waitFor(c.budget(50*time.Second), func() bool {
		done := map[string]bool{}
		for _, r := range log.Snapshot() {
			if r.ReconsumeTimes >= 1 {
				done[r.Key] = true
			}
		}
		for k := range sent {
			if !done[k] {
				return false
			}
		}
		return true
	})
	c.Info("waited %.1fs for redelivery", time.Since(t0).Seconds())
	time.Sleep(c.budget(1500 * time.Millisecond))
	c.Check(redelivered, "every message answered ConsumeRetryLater was redelivered with reconsumeTimes >= 1")

	var problems []string
	recs := log.Snapshot()
	for _, s := range sent {
		var rs []Rec
		for _, r := range recs {
			if r.Key == s.Key {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			problems = append(problems, s.Key+" never delivered")
			continue
		}
		r0 := rs[0]
		if r0.ReconsumeTimes != 0 {
			problems = append(problems, fmt.Sprintf("first delivery has reconsumeTimes %d", r0.ReconsumeTimes))
		}
		problems = append(problems, checkContent(r0, s, topic, true)...)
		if len(rs) < 2 {
			continue
		}
		r1 := rs[1]
		c.Info("%s redelivered %.1fs after the first delivery: reconsumeTimes=%d RETRY_TOPIC=%s ORIGIN_MESSAGE_ID=%s offsetMsgId=%s queue=%d",
			s.Key, r1.At.Sub(r0.At).Seconds(), r1.ReconsumeTimes, r1.RetryTopic, r1.OriginMsgID, r1.OffsetMsgID, r1.QueueID)
		if r1.ReconsumeTimes != 1 {
			problems = append(problems, fmt.Sprintf("first redelivery has reconsumeTimes %d (expected 1)", r1.ReconsumeTimes))
		}
		problems = append(problems, checkContent(r1, s, topic, false)...)
		if r1.RetryTopic != topic {
			problems = append(problems, fmt.Sprintf("redelivery's RETRY_TOPIC is %q, expected %q", r1.RetryTopic, topic))
		}
		if r1.OriginMsgID == "" {
			problems = append(problems, "redelivery has no ORIGIN_MESSAGE_ID")
		}
		if len(rs) > 2 {
			problems = append(problems, fmt.Sprintf("%s delivered %d times although the redelivery succeeded", s.Key, len(rs)))
		}
	}
	report(c, "first delivery and redelivery carry the original topic, tags, keys, body, properties and msgId", problems)
}

// ---------------------------------------------------------------- create-topic helper

// createTopicHelper makes topic exist and be routable. With a broker address it uses the
// admin API (UPDATE_AND_CREATE_TOPIC, queues read/write queues, perm RW), otherwise it lets
// the broker auto-create the topic by producing one message (tag "lsmq_create").
func createTopicHelper(namesrv, topic, broker string, queues int, timeout time.Duration) error {
	c := newCtx("create-topic", namesrv, timeout)
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", strings.Join(c.failures, "; "))
			}
		}()
		a := c.Admin()
		if broker != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = a.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(broker),
				admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues), admin.WithPerm(6))
			if err != nil {
				err = fmt.Errorf("create topic through %s: %w", broker, err)
				return
			}
		} else {
			// the first send goes through the TBW102 route: wait until a broker registered it
			if _, e := WaitRoute(a, "TBW102", c.budget(15*time.Second)); e != nil {
				err = fmt.Errorf("name server has no route for TBW102 (no broker registered, or auto-create disabled): %w", e)
				return
			}
			p := c.Producer(c.Name("createP"))
			m := primitive.NewMessage(topic, []byte("topic creation"))
			m.WithTag("lsmq_create")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, e := p.SendSync(ctx, m)
			if e != nil {
				err = fmt.Errorf("send to %s: %w", topic, e)
				return
			}
			if res.Status != primitive.SendOK {
				err = fmt.Errorf("send to %s: status %d", topic, res.Status)
				return
			}
		}
		if _, e := WaitRoute(a, topic, c.budget(15*time.Second)); e != nil {
			err = fmt.Errorf("name server has no route for %s: %w", topic, e)
		}
	}()
	c.closeAll()
	return err
}

// waitReadyHelper waits until the name server routes TBW102, i.e. a broker registered.
func waitReadyHelper(namesrv string, d time.Duration) error {
	c := newCtx("ready", namesrv, d+5*time.Second)
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", strings.Join(c.failures, "; "))
			}
		}()
		_, err = WaitRoute(c.Admin(), "TBW102", d)
	}()
	c.closeAll()
	return err
}
