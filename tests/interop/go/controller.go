package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// ---------------------------------------------------------------- controller-failover

// sendStats is what the producer of controller-failover saw.
type sendStats struct {
	failures   int
	longestGap time.Duration
	lastOK     time.Time
	first      string
}

// sendUntilOK sends one message until SendOK or giveUp passes; on success it records
// body -> msgId in acked. The same Message each attempt, as the client retries it.
func sendUntilOK(c *Ctx, p rocketmq.Producer, topic, body string, acked map[string]string, st *sendStats,
	giveUp time.Duration) bool {
	m := primitive.NewMessage(topic, []byte(body))
	m.WithTag("TagC")
	end := time.Now().Add(c.budget(giveUp))
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		res, err := p.SendSync(ctx, m)
		cancel()
		var problem string
		switch {
		case err != nil:
			problem = err.Error()
		case res.Status != primitive.SendOK:
			problem = fmt.Sprintf("status %d", res.Status)
		default:
			now := time.Now()
			if gap := now.Sub(st.lastOK); gap > st.longestGap {
				st.longestGap = gap
			}
			st.lastOK = now
			acked[body] = res.MsgID
			return true
		}
		st.failures++
		if st.first == "" {
			st.first = problem
			c.Info("first failed send (%s): %s", body, problem)
		}
		if time.Now().After(end) {
			c.Fail("%q not acknowledged within %s: %s", body, giveUp, problem)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// controllerFailover: 300 synchronous sends, each retried until SendOK; after 100 the
// master of the controller-mode group is killed, and the controller makes a replica the
// master. A push consumer, running all along, must get every acknowledged body with its
// msgId. Then the killed broker starts again (it rejoins as a replica) and 20 more sends
// reach the consumer too. This client asks the name servers for routes every 30 s, so the
// gap lasts until then.
func controllerFailover(c *Ctx) {
	const sends, beforeKill, afterRestart = 300, 100, 20
	const replicasLearnTopic = 12 * time.Second
	topic := c.Name("ctlfo")
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(c.resolver()),
		producer.WithGroupName(c.Name("ctlfoP")),
		producer.WithInstanceName("p_"+c.Name("ctlfoP")),
		producer.WithRetry(10),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		c.Fatal("new producer: %v", err)
	}
	if err := p.Start(); err != nil {
		c.Fatal("start producer: %v", err)
	}
	c.onClose(func() { _ = p.Shutdown() })

	acked := map[string]string{} // body -> msgId of its SendOK
	st := &sendStats{lastOK: time.Now()}
	// The first send creates the topic; the consumer starts once the name servers route it.
	if !sendUntilOK(c, p, topic, fmt.Sprintf("controller failover 0 %s", c.runID), acked, st, 30*time.Second) {
		return
	}
	created := time.Now()
	if _, err := WaitRoute(c.Admin(), topic, c.budget(20*time.Second)); !c.Check(err == nil,
		"the name servers route %s %v", topic, err) {
		return
	}
	var mu sync.Mutex
	got := map[string][]string{} // body -> msgIds of its deliveries
	deliveries := 0
	have := func(bodies map[string]string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for b := range bodies {
			if got[b] != nil {
				n++
			}
		}
		return n
	}
	c.Consumer(c.Name("ctlfoC"), c.Name("ctlfoC")+"_1", topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		mu.Lock()
		got[string(m.Body)] = append(got[string(m.Body)], m.MsgId)
		deliveries++
		mu.Unlock()
		return consumer.ConsumeSuccess
	})

	for i := 1; i < sends; i++ {
		if i == beforeKill {
			c.Check(waitFor(c.budget(30*time.Second), func() bool { return have(acked) == len(acked) }),
				"the consumer has the first %d before the master dies (%d)", beforeKill, have(acked))
			// Unlike the Java client, this one finds no route (and gives up) when the new
			// master does not know the topic: give the replicas time to copy the topic's
			// configuration from the master (upstream's do every 10 s).
			time.Sleep(c.budget(time.Until(created.Add(replicasLearnTopic))))
			if !runEnvCmd(c, "the master is killed", "LSMQ_KILL_MASTER_CMD") {
				return
			}
			st.lastOK = time.Now()
		}
		if !sendUntilOK(c, p, topic, fmt.Sprintf("controller failover %d %s", i, c.runID), acked, st, 45*time.Second) {
			return
		}
	}
	gap := st.longestGap
	c.Check(len(acked) == sends, "%d sends acknowledged SendOK across the failover (%d failed, longest gap %s; "+
		"first: %s)", sends, st.failures, gap.Round(time.Millisecond), st.first)
	c.Check(waitFor(c.budget(40*time.Second), func() bool { return have(acked) == len(acked) }),
		"the consumer gets all %d acknowledged bodies (%d)", len(acked), have(acked))

	if !runEnvCmd(c, "the killed broker is back", "LSMQ_RESTART_KILLED_CMD") {
		return
	}
	for i := 0; i < afterRestart; i++ {
		if !sendUntilOK(c, p, topic, fmt.Sprintf("after restart %d %s", i, c.runID), acked, st, 45*time.Second) {
			return
		}
	}
	c.Check(waitFor(c.budget(40*time.Second), func() bool { return have(acked) == len(acked) }),
		"the consumer gets the %d sent after the restart too (%d of %d)", afterRestart, have(acked), len(acked))
	time.Sleep(c.budget(2 * time.Second)) // a late repeat shows here

	mu.Lock()
	defer mu.Unlock()
	lost, wrongID := 0, 0
	for b, id := range acked {
		ids := got[b]
		found := false
		for _, x := range ids {
			found = found || x == id
		}
		if ids == nil {
			lost++
		} else if !found {
			wrongID++
		}
	}
	c.Check(lost == 0, "no acknowledged message lost (%d)", lost)
	c.Check(wrongID == 0, "every acknowledged body delivered with its msgId (%d not)", wrongID)
	note := fmt.Sprintf("acknowledged %d, lost %d, duplicates %d, failed sends %d, longest gap %s across the failover",
		len(acked), lost, deliveries-len(got), st.failures, gap.Round(time.Millisecond))
	c.mu.Lock()
	c.note = note
	c.mu.Unlock()
}
