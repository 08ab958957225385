//go:build tandemstub

package compare

import "bytes"

type Settings struct {
	IgnoreHeaders []string `yaml:"ignore_headers" json:"ignore_headers,omitempty"`
	IgnoreJSON    []string `yaml:"ignore_json" json:"ignore_json,omitempty"`
	ImageMinPSNR  float64  `yaml:"image_min_psnr" json:"image_min_psnr,omitempty"`
}

func (s Settings) Validate() []error { return nil }

type Comparer struct{}

func New(s Settings) (*Comparer, error) { return &Comparer{}, nil }
func (c *Comparer) Compare(l, n *Response) Result {
	if l.Err != "" || n.Err != "" {
		return Result{Outcome: OutcomeError}
	}
	if l.Status != n.Status {
		return Result{Outcome: OutcomeMismatch, Diffs: []Difference{{Kind: KindStatus, Path: "$.status"}}}
	}
	if l.SHA256 != n.SHA256 || !bytes.Equal(l.Body, n.Body) {
		return Result{Outcome: OutcomeMismatch, Diffs: []Difference{{Kind: KindBody, Path: "$.body"}}}
	}
	return Result{Outcome: OutcomeMatch}
}

type Learner struct{}

func NewLearner() *Learner                            { return &Learner{} }
func (l *Learner) ObserveSecondary(string, Result)    {}
func (l *Learner) ObservePrimary(string, Result)      {}
func (l *Learner) Apply(string, *Result)              {}
