package client

import (
	"context"
	"net/http"

	"github.com/joulehq/joule/api"
)

// PowerBudget returns the power budget with the watts in force now, the
// measured cluster power and the time spent over budget.
func (c *Client) PowerBudget(ctx context.Context) (api.PowerBudgetStatus, error) {
	var st api.PowerBudgetStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/power/budget", nil, &st)
	return st, err
}

// SetPowerBudget replaces the power budget. A bad one comes back as an
// *APIError naming the field.
func (c *Client) SetPowerBudget(ctx context.Context, b api.PowerBudget) (api.PowerBudgetStatus, error) {
	var st api.PowerBudgetStatus
	err := c.do(ctx, http.MethodPut, "/api/v1/power/budget", b, &st)
	return st, err
}
