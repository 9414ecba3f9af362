package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// ---------------------------------------------------------------- replica-failover

// runEnvCmd runs the shell command in the environment variable name (set by
// tests/interop/against-lsmq-replicas.sh) and checks that it succeeded.
func runEnvCmd(c *Ctx, what, name string) bool {
	cmd := os.Getenv(name)
	if cmd == "" {
		c.Fatal("%s is not set (run tests/interop/against-lsmq-replicas.sh)", name)
	}
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	return c.Check(err == nil, "%s (%s) %s", what, cmd, string(out))
}

// sendQuiet sends count messages and returns their keys, or nil and why at the first
// failure (no check recorded: the caller retries while the master comes back).
func sendQuiet(c *Ctx, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, prefix string, count int) (map[string]*Sent, string) {
	sent := map[string]*Sent{}
	for i := 0; i < count; i++ {
		key := fmt.Sprintf("%s%d_%s", prefix, i, c.runID)
		m := primitive.NewMessage(topic, []byte("body of "+key))
		m.WithKeys([]string{key})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := p.SendSync(ctx, m)
		cancel()
		if err != nil {
			return nil, err.Error()
		}
		if res.Status != primitive.SendOK {
			return nil, fmt.Sprintf("status %d", res.Status)
		}
		sent[key] = &Sent{Idx: i, Key: key}
	}
	return sent, ""
}

// slowConsumer starts a push consumer that takes one message at a time and holds no more
// than one per queue in memory, so that most of a topic is still unread on the broker
// when a test breaks something.
func slowConsumer(c *Ctx, group, topic string, log *Log) *Consumer {
	return c.Consumer(group, group+"_slow", topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		log.Add(newRec("slow", m))
		time.Sleep(20 * time.Millisecond)
		return consumer.ConsumeSuccess
	}, consumer.WithPullBatchSize(1), consumer.WithPullThresholdForQueue(1), consumer.WithConsumeGoroutineNums(1))
}

// replicaFailover: 200 messages; a slow consumer has read some when the master is killed
// (-9) and pulls the rest from the replica; the master is started again and takes sends,
// the consumer that lived through it gets them, and a new member of its group afterwards
// gets at most a few old messages again. (This client reads and commits consumer offsets
// at the master only (FindBrokerAddrByName), so a group that starts while the master is
// gone cannot begin, against upstream's slaves as against lsmq's replicas: not checked.)
func replicaFailover(c *Ctx) {
	topic := c.Name("fo")
	group := c.Name("foC")
	p := c.Producer(c.Name("foP"))
	sent, _ := sendMany(c, p, topic, "f", 200, func(int) string { return "TagF" })
	if !c.Check(len(sent) == 200, "200 sends acknowledged SendOK (%d)", len(sent)) {
		return
	}
	log1 := &Log{}
	c1 := slowConsumer(c, group, topic, log1)
	c.Check(waitFor(c.budget(20*time.Second), func() bool { return log1.DistinctIn(sent) >= 20 }),
		"the consumer reads from the master (%d)", log1.DistinctIn(sent))
	if !runEnvCmd(c, "the master is killed", "LSMQ_KILL_MASTER_CMD") {
		return
	}
	before := log1.DistinctIn(sent)
	all := waitFor(c.budget(40*time.Second), func() bool { return log1.DistinctIn(sent) == 200 })
	c.Check(before < 150 && all, "the consumer goes on from the replica: %d of 200 (%d when the master died)",
		log1.DistinctIn(sent), before)
	time.Sleep(c.budget(2 * time.Second))

	if !runEnvCmd(c, "the master is back", "LSMQ_START_MASTER_CMD") {
		return
	}
	// This client refreshes its routes every 30 s: until then it knows no master to send to.
	var more map[string]*Sent
	why := ""
	for end := time.Now().Add(c.budget(45 * time.Second)); more == nil && time.Now().Before(end); {
		if more, why = sendQuiet(c, p, topic, "g", 20); more == nil {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if !c.Check(more != nil, "the master takes sends again %s", why) {
		return
	}
	c.Check(waitFor(c.budget(20*time.Second), func() bool { return log1.DistinctIn(more) == 20 }),
		"the consumer that lived through it gets the 20 new messages (%d)", log1.DistinctIn(more))
	// It commits to the master only, once its route names the master again (by now).
	time.Sleep(c.budget(11 * time.Second))
	c1.Shutdown()

	log3 := &Log{}
	c.Consumer(group, group+"_3", topic, "*", func(m *primitive.MessageExt) consumer.ConsumeResult {
		log3.Add(newRec("c3", m))
		return consumer.ConsumeSuccess
	})
	time.Sleep(c.budget(5 * time.Second))
	again := log3.DistinctIn(sent) + log3.DistinctIn(more)
	c.Check(again <= 4, "the group's offsets survived: a new member got %d old messages again", again)
}
