package postgres

// The campaigns area (store.Campaigns). Placeholder bodies until the driver is written.

import (
	"context"
	"errors"
	"time"

	"github.com/postie/postie/internal/store"
)

var errCampaignsUnbuilt = errors.New("postgres: campaigns not built yet")

func (s *Store) CampaignCreate(ctx context.Context, c store.Campaign) (store.Campaign, error) {
	return store.Campaign{}, errCampaignsUnbuilt
}
func (s *Store) CampaignGet(ctx context.Context, id string) (store.Campaign, error) {
	return store.Campaign{}, errCampaignsUnbuilt
}
func (s *Store) CampaignList(ctx context.Context, p store.CampaignListParams) ([]store.Campaign, string, error) {
	return nil, "", errCampaignsUnbuilt
}
func (s *Store) CampaignUpdate(ctx context.Context, c store.Campaign, states []string) (store.Campaign, error) {
	return store.Campaign{}, errCampaignsUnbuilt
}
func (s *Store) CampaignDelete(ctx context.Context, id string, states []string) error {
	return errCampaignsUnbuilt
}
func (s *Store) CampaignSetState(ctx context.Context, p store.CampaignSetStateParams) (store.Campaign, error) {
	return store.Campaign{}, errCampaignsUnbuilt
}
func (s *Store) CampaignsDue(ctx context.Context, now time.Time, limit int) ([]store.Campaign, error) {
	return nil, errCampaignsUnbuilt
}
func (s *Store) CampaignDayCount(ctx context.Context, day string) (int, error) {
	return 0, errCampaignsUnbuilt
}
func (s *Store) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, error) {
	return store.Run{}, errCampaignsUnbuilt
}
func (s *Store) RunGet(ctx context.Context, id string) (store.Run, error) {
	return store.Run{}, errCampaignsUnbuilt
}
func (s *Store) RunList(ctx context.Context, campaignID string, limit int) ([]store.Run, error) {
	return nil, errCampaignsUnbuilt
}
func (s *Store) RunClaim(ctx context.Context, p store.RunClaimParams) ([]store.Run, error) {
	return nil, errCampaignsUnbuilt
}
func (s *Store) RunRenewLeases(ctx context.Context, p store.RunRenewParams) (int, error) {
	return 0, errCampaignsUnbuilt
}
func (s *Store) RunReleaseLeases(ctx context.Context, owner string) (int, error) {
	return 0, errCampaignsUnbuilt
}
func (s *Store) RunMaterialise(ctx context.Context, p store.RunMaterialiseParams) (store.RunMaterialiseResult, error) {
	return store.RunMaterialiseResult{}, errCampaignsUnbuilt
}
func (s *Store) RunPending(ctx context.Context, p store.RunPendingParams) ([]store.RunRecipient, error) {
	return nil, errCampaignsUnbuilt
}
func (s *Store) RunQueue(ctx context.Context, p store.RunQueueParams) error { return errCampaignsUnbuilt }
func (s *Store) RunSetState(ctx context.Context, p store.RunSetStateParams) (store.Run, error) {
	return store.Run{}, errCampaignsUnbuilt
}
func (s *Store) RunProgress(ctx context.Context, runID string) (store.RunProgress, error) {
	return store.RunProgress{}, errCampaignsUnbuilt
}
func (s *Store) RunRecipients(ctx context.Context, p store.RunRecipientListParams) ([]store.RunRecipient, string, error) {
	return nil, "", errCampaignsUnbuilt
}
