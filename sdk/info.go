package sdk

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

var (
	roleNameRE  = regexp.MustCompile(`^[A-Z][A-Z0-9]*$`)
	homeRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	paramNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)
	semverRE    = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

// ValidRoleName checks a role name: upper-case ASCII letters and digits,
// starting with a letter, at most RoleNameMaxLen bytes.
func ValidRoleName(role string) error {
	if len(role) == 0 || len(role) > RoleNameMaxLen || !roleNameRE.MatchString(role) {
		return fmt.Errorf("role name %q: use 1-%d upper-case letters and digits, starting with a letter", role, RoleNameMaxLen)
	}
	return nil
}

// HomeDir is the name of the role's folder under the operator's installDir.
func (i Info) HomeDir() string {
	if i.Home != "" {
		return i.Home
	}
	return strings.ToLower(i.Role)
}

// Has reports whether the plugin announces a capability.
func (i Info) Has(capability string) bool { return slices.Contains(i.Capabilities, capability) }

// Validate checks every rule of Info; the manager refuses a plugin whose
// Info breaks one, with this error as the reason.
func (i Info) Validate() error {
	var errs []error
	if i.Name == "" || len(i.Name) > PluginNameMaxLen || strings.IndexFunc(i.Name, notPrintable) >= 0 {
		errs = append(errs, fmt.Errorf("name %q: use 1-%d printable characters", i.Name, PluginNameMaxLen))
	}
	if err := ValidRoleName(i.Role); err != nil {
		errs = append(errs, err)
	}
	if !semverRE.MatchString(i.Version) {
		errs = append(errs, fmt.Errorf("version %q: use a semantic version such as 1.2.0 (no leading v)", i.Version))
	}
	if i.APIMajor != APIMajor {
		errs = append(errs, fmt.Errorf("apiMajor %d: this manager speaks API %d", i.APIMajor, APIMajor))
	}
	if i.Home != "" && (len(i.Home) > HomeMaxLen || !homeRE.MatchString(i.Home)) {
		errs = append(errs, fmt.Errorf("home %q: use 1-%d lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", i.Home, HomeMaxLen))
	}
	if i.PidFile != "" {
		if clean := path.Clean(i.PidFile); path.IsAbs(i.PidFile) || clean != i.PidFile || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." {
			errs = append(errs, fmt.Errorf("pidFile %q: use a clean path relative to the role home", i.PidFile))
		}
	}
	seen := map[string]bool{}
	for _, p := range i.Params {
		if err := p.validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("param %q is declared twice", p.Name))
		}
		seen[p.Name] = true
	}
	for _, r := range i.Order.After {
		if err := ValidRoleName(r); err != nil {
			errs = append(errs, fmt.Errorf("order.after: %w", err))
		} else if r == i.Role {
			errs = append(errs, fmt.Errorf("order.after names the role itself"))
		}
	}
	return errors.Join(errs...)
}

func (p Param) validate() error {
	if len(p.Name) > ParamNameMaxLen || !paramNameRE.MatchString(p.Name) {
		return fmt.Errorf("param name %q: use a letter, then letters, digits or '_', at most %d bytes", p.Name, ParamNameMaxLen)
	}
	if _, err := p.Parse(p.Default); p.Default != "" && err != nil {
		return fmt.Errorf("param %s default: %w", p.Name, err)
	}
	switch p.Type {
	case ParamString, ParamInt, ParamBool, ParamDuration:
		return nil
	}
	return fmt.Errorf("param %s type %q: use %s, %s, %s or %s", p.Name, p.Type, ParamString, ParamInt, ParamBool, ParamDuration)
}

// Parse checks a value against the parameter's type and returns it in its
// canonical text form.
func (p Param) Parse(v string) (string, error) {
	switch p.Type {
	case ParamString:
		return v, nil
	case ParamInt:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an integer", v)
		}
		return strconv.FormatInt(n, 10), nil
	case ParamBool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return "", fmt.Errorf("%q is not true or false", v)
		}
		return strconv.FormatBool(b), nil
	case ParamDuration:
		v = strings.TrimSpace(v)
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n <= 1<<31 {
			return v + "s", nil // whole seconds, as clients have always sent them
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return "", fmt.Errorf("%q is not a duration such as 90s, 5m or 600 (seconds)", v)
		}
		return d.String(), nil
	}
	return "", fmt.Errorf("unknown type %q", p.Type)
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }
