package node

import (
	"net/http"
)

// The user's devices: list, link a new one (the existing device offers a
// code, the new one enters it), revoke (package client, devices.go).

// DevicesResponse is GET /v1/devices.
type DevicesResponse struct {
	Devices []DeviceInfoResponse `json:"devices"`
}

// DeviceInfoResponse is one device of the user.
type DeviceInfoResponse struct {
	DeviceID string `json:"device_id"`
	Current  bool   `json:"current"`
	Revoked  bool   `json:"revoked"`
}

// LinkOfferResponse is POST /v1/devices/link.
type LinkOfferResponse struct {
	Code      string `json:"code"`
	ExpiresAt string `json:"expires_at"`
}

// LinkAcceptRequest is POST /v1/devices/link/accept.
type LinkAcceptRequest struct {
	Code string `json:"code"`
}

// LinkAcceptResponse is the user the device now belongs to.
type LinkAcceptResponse struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// RevokeResponse is DELETE /v1/devices/{id}.
type RevokeResponse struct {
	DeviceID string `json:"device_id"`
	Revoked  bool   `json:"revoked"`
	Channels int    `json:"channels"`
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.c.Devices(r.Context())
	if err != nil {
		return err
	}
	resp := DevicesResponse{Devices: make([]DeviceInfoResponse, len(ds))}
	for i, d := range ds {
		resp.Devices[i] = DeviceInfoResponse{DeviceID: d.DeviceID, Current: d.Current, Revoked: d.Revoked}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) offerLink(w http.ResponseWriter, r *http.Request) error {
	o, err := s.c.OfferLink(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, LinkOfferResponse{Code: o.Code, ExpiresAt: rfc3339(o.ExpiresAt)})
	return nil
}

func (s *Server) acceptLink(w http.ResponseWriter, r *http.Request) error {
	var req LinkAcceptRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	uid, err := s.c.AcceptLink(r.Context(), req.Code)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, LinkAcceptResponse{UserID: string(uid), DeviceID: s.p.DeviceID().String()})
	return nil
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	n, err := s.c.RevokeDevice(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, RevokeResponse{DeviceID: id, Revoked: true, Channels: n})
	return nil
}
