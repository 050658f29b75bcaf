package node

import (
	"net/http"

	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/identity"
)

func fingerprint(k identity.IdentityKey) string { return identity.Fingerprint(k) }

func (s *Server) listInvitations(w http.ResponseWriter, r *http.Request) error {
	invs, err := s.c.Invitations(r.Context())
	if err != nil {
		return err
	}
	resp := InvitationsResponse{Invitations: []InvitationResponse{}}
	for _, inv := range invs {
		resp.Invitations = append(resp.Invitations, InvitationResponse{InvitationID: inv.ID,
			Inviter: SenderInfo{UserID: inv.From, DisplayName: inv.DisplayName}, ReceivedAt: rfc3339(inv.ReceivedAt)})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) acceptInvitation(w http.ResponseWriter, r *http.Request) error {
	d, err := s.c.AcceptInvitation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.writeChannel(w, r, http.StatusOK, d)
}

func (s *Server) declineInvitation(w http.ResponseWriter, r *http.Request) error {
	if err := s.c.DeclineInvitation(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func contactOf(ct *client.Contact) ContactResponse {
	return ContactResponse{UserID: ct.UserID, DisplayName: ct.DisplayName, Fingerprint: ct.Fingerprint(),
		Verified: ct.Verified, KeyChanged: ct.KeyChanged}
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) error {
	cts, err := s.c.Contacts(r.Context())
	if err != nil {
		return err
	}
	resp := ContactsResponse{Contacts: []ContactResponse{}}
	for i := range cts {
		resp.Contacts = append(resp.Contacts, contactOf(&cts[i]))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) putContact(w http.ResponseWriter, r *http.Request) error {
	var req ContactRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
			return err
		}
	}
	ct, err := s.c.PutContact(r.Context(), r.PathValue("user_id"), req.Verified)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, contactOf(ct))
	return nil
}

func (s *Server) deleteContact(w http.ResponseWriter, r *http.Request) error {
	if err := s.c.DeleteContact(r.Context(), r.PathValue("user_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) safetyNumber(w http.ResponseWriter, r *http.Request) error {
	u := r.PathValue("user_id")
	sn, err := s.c.SafetyNumber(r.Context(), u)
	if err != nil {
		return err
	}
	resp := SafetyNumberResponse{UserID: u, SafetyNumber: sn}
	if ct, err := s.c.Contact(r.Context(), u); err == nil {
		resp.Verified = ct.Verified && !ct.KeyChanged
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
