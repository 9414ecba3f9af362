package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// idxProp is a user property carrying the message's index, checked on delivery.
const idxProp = "lsmq_idx"

// Sent is what one produced message should look like on delivery.
type Sent struct {
	Idx    int
	Key    string
	Keys   string // the KEYS property as sent: key and a second key, space-separated
	Tags   string
	Body   string
	Result *primitive.SendResult
}

// Rec is one delivery as the listener saw it.
type Rec struct {
	Who            string
	Topic          string
	Tags           string
	Keys           string
	Key            string // first key
	Body           string
	Idx            string
	MsgID          string
	OffsetMsgID    string
	QueueID        int
	QueueOffset    int64
	ReconsumeTimes int32
	RetryTopic     string
	OriginMsgID    string
	StoreHost      string
	BornTimestamp  int64
	At             time.Time
}

func newRec(who string, m *primitive.MessageExt) Rec {
	r := Rec{
		Who:            who,
		Topic:          m.Topic,
		Tags:           m.GetTags(),
		Keys:           m.GetKeys(),
		Body:           string(m.Body),
		Idx:            m.GetProperty(idxProp),
		MsgID:          m.MsgId,
		OffsetMsgID:    m.OffsetMsgId,
		QueueOffset:    m.QueueOffset,
		ReconsumeTimes: m.ReconsumeTimes,
		RetryTopic:     m.GetProperty(primitive.PropertyRetryTopic),
		OriginMsgID:    m.GetProperty(primitive.PropertyOriginMessageId),
		StoreHost:      m.StoreHost,
		BornTimestamp:  m.BornTimestamp,
		At:             time.Now(),
		QueueID:        -1,
	}
	if m.Queue != nil {
		r.QueueID = m.Queue.QueueId
	}
	r.Key = r.Keys
	for i := 0; i < len(r.Keys); i++ {
		if r.Keys[i] == ' ' {
			r.Key = r.Keys[:i]
			break
		}
	}
	return r
}

func (r Rec) String() string {
	return fmt.Sprintf("{%s topic=%s q=%d off=%d tags=%q keys=%q idx=%s msgId=%s reconsume=%d}",
		r.Who, r.Topic, r.QueueID, r.QueueOffset, r.Tags, r.Keys, r.Idx, r.MsgID, r.ReconsumeTimes)
}

// Log is a thread-safe list of deliveries.
type Log struct {
	mu   sync.Mutex
	recs []Rec
}

func (l *Log) Add(r Rec) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
}

func (l *Log) Snapshot() []Rec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Rec(nil), l.recs...)
}

// DistinctIn counts the distinct first keys delivered that are in keys.
func (l *Log) DistinctIn(keys map[string]*Sent) int {
	seen := map[string]bool{}
	for _, r := range l.Snapshot() {
		if _, ok := keys[r.Key]; ok {
			seen[r.Key] = true
		}
	}
	return len(seen)
}

// sendMany sends count messages one by one; tagOf gives each one's tag ("" for none).
// It returns the acknowledged ones by key, and them in send order.
func sendMany(c *Ctx, p rocketmq.Producer, topic, prefix string, count int, tagOf func(int) string) (map[string]*Sent, []*Sent) {
	byKey := map[string]*Sent{}
	var order []*Sent
	perQueue := map[int]int{}
	errs := 0
	t := time.Now()
	for i := 0; i < count; i++ {
		key := fmt.Sprintf("%s%d_%s", prefix, i, c.runID)
		alt := fmt.Sprintf("alt%d_%s", i, c.runID)
		tags := tagOf(i)
		body := fmt.Sprintf("body of %s tagged %q", key, tags)
		m := primitive.NewMessage(topic, []byte(body))
		if tags != "" {
			m.WithTag(tags)
		}
		m.WithKeys([]string{key, alt})
		m.WithProperty(idxProp, strconv.Itoa(i))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.SendSync(ctx, m)
		cancel()
		switch {
		case err != nil:
			c.Fail("send %s: %v", key, err)
			errs++
		case res.Status != primitive.SendOK:
			c.Fail("send %s: status %d", key, res.Status)
			errs++
		default:
			s := &Sent{Idx: i, Key: key, Keys: key + " " + alt, Tags: tags, Body: body, Result: res}
			byKey[key] = s
			order = append(order, s)
			if res.MessageQueue != nil {
				perQueue[res.MessageQueue.QueueId]++
			}
		}
		if errs > 3 {
			c.Fatal("too many send errors, gave up after %d messages", i+1)
		}
	}
	c.Info("sent %d/%d messages to %s in %.2fs; per queue %v", len(order), count, topic,
		time.Since(t).Seconds(), sortedCounts(perQueue))
	return byKey, order
}

func sortedCounts(m map[int]int) string {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	s := "{"
	for i, k := range ks {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d:%d", k, m[k])
	}
	return s + "}"
}

// checkContent compares one delivery with what was sent: topic (after the client restored
// it from RETRY_TOPIC for redeliveries), tags, keys, body, user property, msgId (UNIQ_KEY)
// and, for a first delivery, the queue and offset the send result named.
func checkContent(r Rec, s *Sent, topic string, firstDelivery bool) []string {
	var p []string
	if r.Topic != topic {
		p = append(p, fmt.Sprintf("topic %s != %s in %s", r.Topic, topic, r))
	}
	if r.Tags != s.Tags {
		p = append(p, fmt.Sprintf("tags %q != %q in %s", r.Tags, s.Tags, r))
	}
	if r.Keys != s.Keys {
		p = append(p, fmt.Sprintf("keys %q != %q in %s", r.Keys, s.Keys, r))
	}
	if r.Body != s.Body {
		p = append(p, fmt.Sprintf("body %q != %q in %s", r.Body, s.Body, r))
	}
	if r.Idx != strconv.Itoa(s.Idx) {
		p = append(p, fmt.Sprintf("user property %s=%q != %d in %s", idxProp, r.Idx, s.Idx, r))
	}
	if s.Result != nil && r.MsgID != s.Result.MsgID {
		p = append(p, fmt.Sprintf("msgId %s != send result's %s in %s", r.MsgID, s.Result.MsgID, r))
	}
	if r.BornTimestamp <= 0 || r.StoreHost == "" {
		p = append(p, fmt.Sprintf("bornTimestamp %d / storeHost %q missing in %s", r.BornTimestamp, r.StoreHost, r))
	}
	if firstDelivery && s.Result != nil && s.Result.MessageQueue != nil {
		if r.QueueID != s.Result.MessageQueue.QueueId || r.QueueOffset != s.Result.QueueOffset {
			p = append(p, fmt.Sprintf("delivered from queue %d offset %d, the send result said queue %d offset %d: %s",
				r.QueueID, r.QueueOffset, s.Result.MessageQueue.QueueId, s.Result.QueueOffset, r))
		}
		if s.Result.OffsetMsgID != "" && r.OffsetMsgID != s.Result.OffsetMsgID {
			p = append(p, fmt.Sprintf("offset msgId %s (store host + commit log offset) != the send response's msgId %s: %s",
				r.OffsetMsgID, s.Result.OffsetMsgID, r))
		}
	}
	return p
}

// report fails the scenario with the first few problems, if any.
func report(c *Ctx, what string, problems []string) {
	if len(problems) == 0 {
		c.Info("ok: %s", what)
		return
	}
	shown := problems
	if len(shown) > 4 {
		shown = shown[:4]
	}
	c.Fail("%s (%d problems): %v", what, len(problems), shown)
}
