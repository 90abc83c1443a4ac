"""Operations on whole tenants, each a job or a transition: provisioning and import
(provisioning.py, as a saga of steps with undos: saga.py), suspension, resumption and
maintenance (states.py), export (exports.py, over the COPY path in copying.py), online
moves between tiers and servers and the draining of a server (moves.py, around the
fences of fences.py), deprovisioning and purging (retire.py), cancelling a job
(cancelling.py), the tenant schema upgrade runner (upgrade.py), placements
(placements.py), storage in each tier (storage.py), and the workers' entry (dispatch.py)."""
