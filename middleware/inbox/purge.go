package inbox

import "context"

func (i *Inbox) purgeLoop() {
	defer close(i.done)
	for {
		select {
		case <-i.ctx.Done():
			return
		case <-i.cfg.Clock.After(i.cfg.PurgeInterval):
		}
		if _, err := i.Purge(i.ctx); err != nil && i.ctx.Err() == nil {
			i.logger.Error("Inbox purge failed; retried at the next interval", err, nil)
		}
	}
}

// Purge deletes the expired records of the store, PurgeBatch at a time with
// PurgePause between batches, until a batch comes back short. It returns how
// many it deleted. The background purger calls it every PurgeInterval; call
// it yourself with PurgeInterval < 0. It stops early when ctx ends or the
// Inbox is closed (ErrClosed).
func (i *Inbox) Purge(ctx context.Context) (int, error) {
	if i.ctx.Err() != nil {
		return 0, ErrClosed
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(i.ctx, stop)()
	i.purgeMu.Lock()
	defer i.purgeMu.Unlock()
	start := i.cfg.Clock.Now()
	total, batches := 0, 0
	var err error
	for {
		var n int
		n, err = i.store.Purge(ctx, i.cfg.PurgeBatch)
		batches++
		total += n
		i.purgedN.Add(int64(n))
		if err != nil || n < i.cfg.PurgeBatch {
			break
		}
		if i.cfg.PurgePause > 0 {
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-i.cfg.Clock.After(i.cfg.PurgePause):
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil && i.ctx.Err() != nil {
		err = ErrClosed
	}
	p := PurgedParams{Deleted: total, Batches: batches, Duration: i.cfg.Clock.Now().Sub(start), Err: err}
	for _, hk := range i.purged {
		hk.OnPurged(p)
	}
	return total, err
}
