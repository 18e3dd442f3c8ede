package sqlite

import (
	"testing"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

func TestCampaigns(t *testing.T) {
	t.Parallel()
	storetest.RunCampaigns(t, func(t *testing.T) store.Store { return openTest(t) })
}
