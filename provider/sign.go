package provider

// SignWithLabel signs content with the identity's MLS signature key under
// SignContent{"MLS 1.0 "+label, content} (RFC 9420 §5.1.2), e.g. a relay's
// login challenge. The private key never leaves the provider.
func (p *Provider) SignWithLabel(label string, content []byte) ([]byte, error) {
	return p.signer.SignWithLabel(label, content)
}
