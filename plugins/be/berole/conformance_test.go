package berole

import (
	"testing"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
)

func TestConformance(t *testing.T) {
	doristest.Conformance(t, New("1.2.3"), "1.2.3", doris.BE, "./plugins/be")
}
